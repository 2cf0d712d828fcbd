//! The aliases(5) source format, and alias values as local(8) reads them.
//!
//! # Source files ([`parse_aliases`], for postalias and newaliases)
//!
//! ```text
//! # comment
//! postmaster: root
//! staff:      jerry, tom,
//!             "|/usr/bin/procmail -m", /var/log/staff.mbox,
//!             :include:/etc/ironpost/staff.list
//! "odd name": jerry
//! ```
//!
//! Lines are read as logical lines (a line that starts with white space
//! continues the previous one; comments and blank lines are skipped). Each
//! logical line is then cut into RFC 822 tokens the way Postfix's
//! `tok822_scan()` does: atoms, `"quoted strings"` (backslash escapes,
//! white space turned into plain spaces), `[domain literals]`, nested
//! `(comments)` kept as written, and the one-character operators
//! `()<>@,;:\".[]|%!`. The first `:` *token* separates the name from the
//! value, so a colon inside quotes, a comment or a domain literal does not
//! count. Postfix's checks, in its order:
//!
//! - no `:` token, nothing before it, nothing after it, or a `,` before it:
//!   `need name:value pair`, the line is skipped;
//! - an `@` or `%` before it: `name must be local`, the line is skipped.
//!
//! The name is the name tokens without quoting (a space between two words,
//! `"A B"` → `a b`, `b21 (c)` → `b21 (c)`), folded to lower case. The value
//! is re-written from its tokens as postalias stores it: `, ` after each
//! comma, one space between two words and before `<`, no space around other
//! operators (`a . b @ c` → `a.b@c`), atoms that needed a backslash written
//! as quoted strings (`x\,y` → `"x,y"`, `\root` → `root`), unterminated
//! quotes and domain literals closed. The first of duplicate names wins.
//!
//! # Values ([`parse_alias_value`], [`parse_include_file`])
//!
//! What local(8) does with a value (`tok822_parse()` in Postfix):
//! destinations are separated by commas, and a missing comma is assumed
//! between two words, so **white space outside quotes separates
//! destinations**: `a b` is `a` and `b`, and `|/bin/cmd -x` is the command
//! `/bin/cmd` and the address `-x` (quote commands with arguments:
//! `"|/bin/cmd -x"`, as aliases(5) says). In `Name <user@domain>` only the
//! part in angle brackets counts; in `list: a, b;` the group name is
//! dropped; `(comments)` are dropped. Each destination, with its quotes
//! removed, is then `/file/name`, `|command`, `:include:/file/name` (the
//! keyword in any case) or else an address. Addresses come back in quoted
//! (external) form: `"quoted local"@domain`, `"x,y"`.
//!
//! `:include:` and `.forward` files hold the same syntax, one or more
//! destinations per line; a quote cannot continue on the next line.
//!
//! # Differences from Postfix
//!
//! - The duplicate warning names the source file and line
//!   (`aliases, line 9: duplicate entry: "a1"`); Postfix names the `.db`
//!   file, without a line. The `@: @` and `YP_*` records are not produced.
//! - A line whose name or value comes out empty (`"": x`, `a: \`) is
//!   skipped with `need name:value pair`; Postfix stores it and complains at
//!   every lookup.
//! - Names are folded with [`fold_case`]: lower case plus the common full
//!   case folds (`Straße` → `strasse`, as Postfix with `smtputf8_enable`);
//!   Postfix's ICU folding differs for a few rare characters.
//! - Where Postfix guesses, a value is refused with a message (the caller
//!   defers rather than misdelivers): an unterminated quoted string, comment
//!   or domain literal, a stray `)`, a backslash at the very end, an empty
//!   address (`""`), an empty command, a relative `:include:` path, a value
//!   with no destination at all, and `~/file` destinations (Postfix appends
//!   to a file in the home directory; not supported here).
//! - `\user` (an address of one word written with a leading backslash)
//!   keeps its backslash: for a `.forward` file it means the user's own
//!   mailbox. Postfix drops the backslash and reaches the same result through
//!   its loop detection. Through postalias the backslash is dropped, as in
//!   Postfix.
//! - In `:include:` and `.forward` files a line whose first non-blank
//!   character is `#` is a comment (Postfix only looks at the first
//!   character), and long lines are not cut into `line_length_limit`
//!   chunks.

use ironpost_conf::lines::logical_lines;

/// One alias from a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    /// The name, without quotes, folded to lower case.
    pub name: String,
    /// The value as postalias stores it in the index.
    pub value: String,
    /// The first physical line of the entry (1-based).
    pub line: usize,
}

/// One destination of an alias, `:include:` file or `.forward` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasTarget {
    /// A mail address, in quoted (external) form. `\user` keeps its
    /// backslash: the user's own mailbox.
    Address(String),
    /// `/file/name`: append to the file.
    File(String),
    /// `|command`, without the bar.
    Command(String),
    /// `:include:/file/name`, the path.
    Include(String),
}

/// Parses an aliases(5) source file into the entries postalias would store,
/// in file order. Warnings come back formatted as `FILE, line N: ...`.
pub fn parse_aliases(file: &str, text: &str) -> (Vec<AliasEntry>, Vec<String>) {
    let (lines, line_warnings) = logical_lines(text);
    let mut warnings: Vec<String> = line_warnings
        .into_iter()
        .map(|w| format!("{file}, line {}: {}", w.line, w.text))
        .collect();
    let mut entries: Vec<AliasEntry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let physical: Vec<&str> = text.split('\n').collect();
    for line in lines {
        let tokens = scan(&untrimmed(
            &line.text,
            physical.get(line.last.wrapping_sub(1)),
        ))
        .tokens;
        if tokens.is_empty() {
            continue;
        }
        let (name, value) = match split_entry(&tokens) {
            Ok(pair) => pair,
            Err(why) => {
                warnings.push(format!("{file}, line {}: {why}", line.first));
                continue;
            }
        };
        if !seen.insert(name.clone()) {
            warnings.push(format!(
                "{file}, line {}: duplicate entry: \"{name}\"",
                line.first
            ));
            continue;
        }
        entries.push(AliasEntry {
            name,
            value,
            line: line.first,
        });
    }
    (entries, warnings)
}

/// A logical line with the white space that ended its last physical line
/// put back: Postfix keeps it, and it shows in an unterminated comment or
/// quoted string at the end (`a: x (note ` is stored with the space).
fn untrimmed(logical: &str, last: Option<&&str>) -> String {
    let mut out = logical.to_string();
    if let Some(raw) = last {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let kept = raw.trim_end();
        if logical.ends_with(kept)
            && let Some(tail) = raw.get(kept.len()..)
        {
            out.push_str(tail);
        }
    }
    out
}

/// Parses an alias value (the right-hand side of an alias, as stored) into
/// its destinations.
pub fn parse_alias_value(value: &str) -> Result<Vec<AliasTarget>, String> {
    let mut out = Vec::new();
    parse_targets(value, &mut out)?;
    if out.is_empty() {
        return Err(format!("no destination in \"{}\"", excerpt(value)));
    }
    Ok(out)
}

/// Parses a `:include:` or `.forward` file: any number of lines, each with
/// one or more destinations; empty lines and lines starting with `#` are
/// skipped. A file without destinations gives an empty list.
pub fn parse_include_file(text: &str) -> Result<Vec<AliasTarget>, String> {
    let mut out = Vec::new();
    for (idx, line) in text.split('\n').enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        parse_targets(line, &mut out).map_err(|e| format!("line {}: {e}", idx + 1))?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Tokens (Postfix tok822_scan).

/// RFC 822 specials plus the operators Postfix adds (`|` for aliases, `%`
/// and `!` for old routing forms).
const OPERATORS: &str = "|%!()<>@,;:\\\".[]";

fn is_operator(c: char) -> bool {
    OPERATORS.contains(c)
}

/// The white space the tokenizer skips (and turns into spaces in quotes).
fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word; `backslash` tells that it was written with a leading `\`.
    Atom { text: String, backslash: bool },
    /// A quoted string, without quotes or escapes.
    Quoted(String),
    /// A domain literal, without brackets or escapes.
    DomainLiteral(String),
    /// A comment as written, parentheses included.
    Comment(String),
    /// A one-character operator.
    Op(char),
}

impl Token {
    /// Everything but an operator (Postfix's NON_OPERATOR).
    fn is_word(&self) -> bool {
        !matches!(self, Token::Op(_))
    }
}

struct Scanned {
    tokens: Vec<Token>,
    /// The first lexical fault noticed (Postfix carries on regardless).
    problem: Option<&'static str>,
}

fn scan(text: &str) -> Scanned {
    let mut tokens = Vec::new();
    let mut problem = None;
    let mut note = |p: &'static str| {
        if problem.is_none() {
            problem = Some(p);
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_lws(c) {
            continue;
        }
        match c {
            '(' => {
                let (raw, closed) = scan_comment(&mut chars);
                if !closed {
                    note("unterminated comment");
                }
                tokens.push(Token::Comment(raw));
            }
            '[' => {
                let (inner, closed) = scan_until(&mut chars, ']');
                if !closed {
                    note("unterminated domain literal");
                }
                tokens.push(Token::DomainLiteral(inner));
            }
            '"' => {
                let (inner, closed) = scan_until(&mut chars, '"');
                if !closed {
                    note("unterminated quoted string");
                }
                tokens.push(Token::Quoted(inner));
            }
            c if c != '\\' && is_operator(c) => {
                if c == ')' {
                    note("unbalanced ')'");
                }
                tokens.push(Token::Op(c));
            }
            first => {
                let mut word = String::new();
                let mut current = first;
                loop {
                    if current == '\\' {
                        match chars.next() {
                            Some(e) => word.push(if is_lws(e) { ' ' } else { e }),
                            None => {
                                note("backslash at end of text");
                                break;
                            }
                        }
                    } else {
                        word.push(current);
                    }
                    match chars.peek() {
                        Some(&n) if n == '\\' || !(is_lws(n) || is_operator(n)) => {
                            current = n;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                // A word that holds specials (through backslashes) is
                // written back as a quoted string (tok822_quote_atom).
                if word
                    .chars()
                    .any(|c| c == ' ' || c.is_ascii_control() || is_operator(c))
                {
                    tokens.push(Token::Quoted(word));
                } else {
                    tokens.push(Token::Atom {
                        text: word,
                        backslash: first == '\\',
                    });
                }
            }
        }
    }
    Scanned { tokens, problem }
}

/// A quoted string or domain literal after its opening character: escapes
/// removed, white space made plain spaces. Returns whether it was closed.
fn scan_until(chars: &mut impl Iterator<Item = char>, close: char) -> (String, bool) {
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return (out, false),
            Some('\\') => match chars.next() {
                None => return (out, false),
                Some(e) => out.push(if is_lws(e) { ' ' } else { e }),
            },
            Some(c) if c == close => return (out, true),
            Some(c) => out.push(if is_lws(c) { ' ' } else { c }),
        }
    }
}

/// A comment after its `(`, kept as written; comments nest.
fn scan_comment(chars: &mut impl Iterator<Item = char>) -> (String, bool) {
    let mut raw = String::from("(");
    let mut level = 1usize;
    loop {
        let Some(c) = chars.next() else {
            return (raw, false);
        };
        raw.push(c);
        match c {
            '(' => level += 1,
            ')' => {
                level -= 1;
                if level == 0 {
                    return (raw, true);
                }
            }
            '\\' => match chars.next() {
                Some(e) => raw.push(e),
                None => return (raw, false),
            },
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Tokens back to text (tok822_internalize, tok822_externalize).

/// Whether a space follows `token` when the list is written out.
fn space_after(token: &Token, next: Option<&Token>) -> bool {
    let Some(next) = next else {
        return false;
    };
    matches!(token, Token::Op(','))
        || matches!(next, Token::Op('<'))
        || (token.is_word() && next.is_word())
}

/// Unquoted form of a flat token list, spaces between words.
fn internalize(tokens: &[Token]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Atom { text, .. } | Token::Quoted(text) | Token::Comment(text) => {
                out.push_str(text)
            }
            Token::DomainLiteral(text) => {
                out.push('[');
                out.push_str(text);
                out.push(']');
            }
            Token::Op(c) => out.push(*c),
        }
        if space_after(t, tokens.get(i + 1)) {
            out.push(' ');
        }
    }
    out
}

/// Quoted form of a flat token list, as postalias stores a value.
fn externalize(tokens: &[Token]) -> String {
    fn copy_quoted(out: &mut String, text: &str, specials: &[char]) {
        for c in text.chars() {
            if specials.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Op(',') => {
                out.push_str(", ");
                continue;
            }
            Token::Atom { text, .. } | Token::Comment(text) => out.push_str(text),
            Token::Quoted(text) => {
                out.push('"');
                copy_quoted(&mut out, text, &['"', '\\', '\r', '\n']);
                out.push('"');
            }
            Token::DomainLiteral(text) => {
                out.push('[');
                copy_quoted(&mut out, text, &['\\', '\r', '\n']);
                out.push(']');
            }
            Token::Op(c) => out.push(*c),
        }
        if space_after(t, tokens.get(i + 1)) {
            out.push(' ');
        }
    }
    out
}

/// Splits one source line's tokens into the folded name and the stored
/// value, with Postfix's checks.
fn split_entry(tokens: &[Token]) -> Result<(String, String), &'static str> {
    const NEED_PAIR: &str = "need name:value pair";
    let Some(colon) = tokens.iter().position(|t| *t == Token::Op(':')) else {
        return Err(NEED_PAIR);
    };
    let (name_tokens, rest) = tokens.split_at(colon);
    let value_tokens = rest.get(1..).unwrap_or_default();
    if name_tokens.is_empty() || value_tokens.is_empty() || name_tokens.contains(&Token::Op(',')) {
        return Err(NEED_PAIR);
    }
    if name_tokens
        .iter()
        .any(|t| matches!(t, Token::Op('@') | Token::Op('%')))
    {
        return Err("name must be local");
    }
    let name = fold_case(&internalize(name_tokens));
    let value = externalize(value_tokens);
    if name.is_empty() || value.is_empty() {
        return Err(NEED_PAIR);
    }
    Ok((name, value))
}

/// Folds a name for lookups as Postfix does with UTF-8 enabled (full case
/// folding): lower case, plus the folds that lower-casing lacks for the
/// characters met in practice (`ß` → `ss`, final sigma, Latin ligatures).
pub fn fold_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            'ß' | '\u{1e9e}' => out.push_str("ss"),
            'ς' => out.push('σ'),
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Destinations (tok822_parse, local/token.c).

/// The token ranges that Postfix's parser makes addresses of, left to
/// right. Comments must have been removed (Postfix moves them aside, where
/// they change nothing). The walk goes from right to left, as Postfix's
/// does; `right` is the end of the pending address.
fn address_ranges(t: &[Token]) -> Vec<(usize, usize)> {
    const DO_WORD: u8 = 1;
    const DO_GROUP: u8 = 2;
    let mut out = Vec::new();
    let mut emit = |start: usize, end: usize| {
        if start < end {
            out.push((start, end));
        }
    };
    let mut state = DO_WORD;
    let mut right = t.len();
    // `i` is one past the current token; 0 is the left edge.
    let mut i = t.len();
    while i > 0 {
        let k = i - 1;
        match &t[k] {
            Token::Op(';') => {
                emit(k + 1, right);
                right = k;
                state = DO_GROUP | DO_WORD;
            }
            Token::Op(':') if state & DO_GROUP != 0 => {
                // `name: a, b;` — the group's addresses, then skip its name.
                emit(k + 1, right);
                match t[..k].iter().rposition(|x| *x == Token::Op(',')) {
                    Some(j) => {
                        right = j;
                        i = j + 1;
                    }
                    None => {
                        right = 0;
                        i = 0;
                    }
                }
                continue;
            }
            Token::Op('>') => {
                // `phrase <address>`: the address, then skip the phrase.
                emit(k + 1, right);
                match t[..k].iter().rposition(|x| *x == Token::Op('<')) {
                    Some(j) => {
                        emit(j + 1, k);
                        let stop = t[..j]
                            .iter()
                            .rposition(|x| matches!(x, Token::Op('>' | ';' | ',' | ':')));
                        match stop {
                            Some(m) => {
                                right = m;
                                i = m + 1;
                            }
                            None => {
                                right = 0;
                                i = 0;
                            }
                        }
                    }
                    None => {
                        emit(0, k);
                        right = 0;
                        i = 0;
                    }
                }
                state |= DO_WORD;
                continue;
            }
            Token::Atom { .. } | Token::Quoted(_) | Token::DomainLiteral(_) => {
                // Two words in a row: a comma is missing between them.
                if state & DO_WORD == 0 {
                    emit(k + 1, right);
                    right = k + 1;
                }
                state &= !DO_WORD;
            }
            Token::Op(',') => {
                emit(k + 1, right);
                right = k;
                state |= DO_WORD;
            }
            Token::Op(_) | Token::Comment(_) => state |= DO_WORD,
        }
        i -= 1;
    }
    emit(0, right);
    out.reverse();
    out
}

fn parse_targets(text: &str, out: &mut Vec<AliasTarget>) -> Result<(), String> {
    let scanned = scan(text);
    if let Some(problem) = scanned.problem {
        return Err(format!("{problem} in \"{}\"", excerpt(text)));
    }
    let tokens: Vec<Token> = scanned
        .tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    for (start, end) in address_ranges(&tokens) {
        let Some(part) = tokens.get(start..end) else {
            continue;
        };
        out.push(target(part)?);
    }
    Ok(())
}

/// One destination from its tokens, classified as local(8) does it on the
/// unquoted text.
fn target(tokens: &[Token]) -> Result<AliasTarget, String> {
    // Inside an address Postfix writes no spaces between tokens.
    let mut text = String::new();
    for t in tokens {
        match t {
            Token::Atom { text: s, .. } | Token::Quoted(s) | Token::Comment(s) => text.push_str(s),
            Token::DomainLiteral(s) => {
                text.push('[');
                text.push_str(s);
                text.push(']');
            }
            Token::Op(c) => text.push(*c),
        }
    }
    if text.is_empty() {
        return Err("empty address".to_string());
    }
    if text.starts_with('/') {
        return Ok(AliasTarget::File(text));
    }
    if text.starts_with('~') {
        return Err(format!(
            "unsupported destination \"{}\": home directory file names are not supported",
            excerpt(&text)
        ));
    }
    if let Some(cmd) = text.strip_prefix('|') {
        let cmd = cmd.trim();
        if cmd.is_empty() {
            return Err("empty command after \"|\"".to_string());
        }
        return Ok(AliasTarget::Command(cmd.to_string()));
    }
    const INCLUDE: &str = ":include:";
    if let Some(keyword) = text.get(..INCLUDE.len())
        && keyword.eq_ignore_ascii_case(INCLUDE)
    {
        let path = text.get(INCLUDE.len()..).unwrap_or_default();
        if !path.starts_with('/') {
            return Err(format!(
                ":include: requires an absolute path name: \"{}\"",
                excerpt(&text)
            ));
        }
        return Ok(AliasTarget::Include(path.to_string()));
    }
    if let [
        Token::Atom {
            text: word,
            backslash: true,
        },
    ] = tokens
    {
        return Ok(AliasTarget::Address(format!("\\{word}")));
    }
    Ok(AliasTarget::Address(quote_822_local(&text)))
}

/// Quotes the local part of an unquoted address when it is not a dot-atom
/// (Postfix quote_822_local, 8-bit clean): `a b@d` → `"a b"@d`.
fn quote_822_local(addr: &str) -> String {
    let start = if addr.starts_with('@') {
        addr.find(':').map_or(0, |i| i + 1)
    } else {
        0
    };
    let (route, rest) = addr.split_at(start);
    let (local, domain) = rest.split_at(rest.rfind('@').unwrap_or(rest.len()));
    if is_dot_string(local) {
        return addr.to_string();
    }
    let mut out = String::with_capacity(addr.len() + 2);
    out.push_str(route);
    out.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\' | '\r') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out.push_str(domain);
    out
}

fn is_dot_string(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local
            .chars()
            .any(|c| c == ' ' || c.is_ascii_control() || "()<>@,;:\\\"[]".contains(c))
}

/// The start of a text for a message, cut on a character boundary.
fn excerpt(text: &str) -> String {
    const MAX: usize = 100;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or_default()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AliasTarget::{Address, Command, File, Include};

    /// Every (input line, name, value) below was checked against Postfix
    /// 3.7.11's postalias: the line was built with `postalias FILE` and the
    /// stored pair read back with `postalias -s FILE`.
    #[test]
    fn values_as_postalias_stores_them() {
        let cases: &[(&str, &str, &str)] = &[
            // Elements joined with ", "; white space around them goes.
            ("a1: x  ,y,   z", "a1", "x, y, z"),
            // Quotes kept, with the white space inside them.
            (
                "A2: \"|cmd  two spaces\" , /file/path",
                "a2",
                "\"|cmd  two spaces\", /file/path",
            ),
            (
                "a3: :include:/etc/list, <user@dom>, User Name <u@d>",
                "a3",
                ":include:/etc/list, <user@dom>, User Name <u@d>",
            ),
            // Comments kept as written.
            ("a4: x (comment) ,y", "a4", "x (comment), y"),
            ("\"q name\": x", "q name", "x"),
            ("a7: \"quoted local\"@dom", "a7", "\"quoted local\"@dom"),
            ("a8: x y z", "a8", "x y z"),
            // An escaped special makes the word a quoted string.
            ("a9: x\\,y", "a9", "\"x,y\""),
            ("a10: \\root, jerry", "a10", "root, jerry"),
            ("\"a12 : odd\": v", "a12 : odd", "v"),
            // An unterminated quote is closed.
            ("a13: \"unterminated", "a13", "\"unterminated\""),
            ("b1: x    y", "b1", "x y"),
            ("b2: a, ,b", "b2", "a, , b"),
            ("b5: <>", "b5", "<>"),
            // An unquoted command is stored as it is.
            (
                "b7: |/usr/bin/procmail -a x",
                "b7",
                "|/usr/bin/procmail -a x",
            ),
            ("b8: :INCLUDE:/x/y", "b8", ":INCLUDE:/x/y"),
            (
                "b9: a\\.b, \\\\x, \"a\\\"b\", \"tab\tin\"",
                "b9",
                "\"a.b\", \"\\\\x\", \"a\\\"b\", \"tab in\"",
            ),
            (
                "b10: x (unterminated comment",
                "b10",
                "x (unterminated comment",
            ),
            ("b11: x ) y", "b11", "x)y"),
            ("b13: \"\"", "b13", "\"\""),
            // No spaces around operators.
            ("b14: a . b @ c . d", "b14", "a.b@c.d"),
            ("b15: [1.2.3.4], x[a b]y", "b15", "[1.2.3.4], x [a b] y"),
            ("b16: a;b", "b16", "a;b"),
            ("b17: list: a, b;", "b17", "list:a, b;"),
            ("\"B18\": X, Y", "b18", "X, Y"),
            ("b19:x", "b19", "x"),
            ("b 20: x", "b 20", "x"),
            ("b21 (c): x", "b21 (c)", "x"),
            ("b23: \"a\" \"b\"", "b23", "\"a\" \"b\""),
            ("b24: x,,y", "b24", "x, , y"),
            ("b25: ,x", "b25", ", x"),
            // The space after a final comma stays.
            ("b26: x,", "b26", "x, "),
            ("b27: é, ü@dom", "b27", "é, ü@dom"),
            ("b28: a:b:c", "b28", "a:b:c"),
            ("b29: (only comment)", "b29", "(only comment)"),
            ("b30: a\ttab", "b30", "a tab"),
            ("\"a\\\"b\": x", "a\"b", "x"),
            ("\"a@b\": x", "a@b", "x"),
            ("(c): x", "(c)", "x"),
            ("Ab.C: x", "ab.c", "x"),
            ("[a:b]: x", "[a:b]", "x"),
            ("ab\"cd\": x", "ab cd", "x"),
            ("\"A B\"  : x", "a b", "x"),
            ("a(c)b: x", "a (c) b", "x"),
            // Postfix 3.7 stores this name as "é2" (UTF-8 case folding).
            ("É2: x", "é2", "x"),
            ("c1: Name<u@d>", "c1", "Name <u@d>"),
            ("c2: (c)", "c2", "(c)"),
            ("c3: x  # not comment", "c3", "x # not comment"),
            ("c4: <a b>, <\"x y\"@d>", "c4", "<a b>, <\"x y\"@d>"),
            ("c5: x(c)y", "c5", "x (c) y"),
            ("c6: \"a\"b", "c6", "\"a\" b"),
            ("c7: a\"b\"", "c7", "a \"b\""),
            ("c8: \"a\\", "c8", "\"a\""),
            ("c9: (a(b)c)d", "c9", "(a(b)c) d"),
            ("c10: a\\ b", "c10", "\"a b\""),
            ("c11: \\\"x", "c11", "\"\\\"x\""),
            ("c12: x@[1.2.3.4]", "c12", "x@[1.2.3.4]"),
            ("c13: \"|cmd\" arg", "c13", "\"|cmd\" arg"),
            ("c14: |\"cmd arg\"", "c14", "|\"cmd arg\""),
            ("c15: :include:\"/a b\"", "c15", ":include:\"/a b\""),
            ("c16: ~/file, ~user", "c16", "~/file, ~user"),
            ("c17: x <", "c17", "x <"),
            ("c18: x >", "c18", "x>"),
            ("c19: @a:b@c", "c19", "@a:b@c"),
            ("c20: a!b%c", "c20", "a!b%c"),
            ("c21: (x\\)y) z", "c21", "(x\\)y) z"),
            ("c22: [abc", "c22", "[abc]"),
            // A final backslash is dropped.
            ("c23: x\\", "c23", "x"),
            ("c24: a\u{1}b, a\u{b}b", "c24", "\"a\u{1}b\", \"a\u{b}b\""),
            ("d1: \"a\"@\"b\"", "d1", "\"a\"@\"b\""),
            ("d2: x,\t", "d2", "x, "),
            ("d3: \"x\\\\y\"", "d3", "\"x\\\\y\""),
            // Full case folding of the name.
            ("Straße: x", "strasse", "x"),
            ("\u{fb01}x: y", "fix", "y"),
            ("ΣΟΦΟΣ: z", "σοφοσ", "z"),
            ("ǅ: v", "ǆ", "v"),
            // White space at the end stays inside an unterminated comment
            // or quoted string.
            ("f1: x (note  ", "f1", "x (note  "),
            ("f2: \"open \t", "f2", "\"open  \""),
            ("f3: x  ", "f3", "x"),
        ];
        for (line, name, value) in cases {
            let (entries, warnings) = parse_aliases("aliases", line);
            assert_eq!(warnings, Vec::<String>::new(), "{line}");
            let got: Vec<(&str, &str)> = entries
                .iter()
                .map(|e| (e.name.as_str(), e.value.as_str()))
                .collect();
            assert_eq!(got, vec![(*name, *value)], "{line}");
        }
    }

    /// Logical lines, line numbers, warnings and duplicates; checked
    /// against Postfix 3.7.11's postalias (see the module doc for the two
    /// warnings worded differently).
    #[test]
    fn whole_file() {
        let text = "# comment\n\
                    a1: x\n\
                    a5:\n\
                    a6:    \n\
                    a11: \n  cont\n\
                    :nobody: x\n\
                    b@c: d\n\
                    b%22: x\n\
                    a, b: x\n\
                    \"abc\"\n\
                    e1: \"a\n\t  b\"\n\
                    e2: (c\n\td)\n\
                    e3: x\n# comment between\n\n  y\n e4: orphan\n\
                    a1: duplicate\n\
                    A1: duplicate too\n";
        let (entries, warnings) = parse_aliases("aliases", text);
        let got: Vec<(&str, &str, usize)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a1", "x", 2),
                ("a11", "cont", 5),
                // Continuations keep their leading white space; in quotes
                // a tab becomes a space, in comments it stays.
                ("e1", "\"a   b\"", 12),
                ("e2", "(c\td)", 14),
                ("e3", "x y e4:orphan", 16),
            ]
        );
        assert_eq!(
            warnings,
            vec![
                "aliases, line 3: need name:value pair",
                "aliases, line 4: need name:value pair",
                "aliases, line 7: need name:value pair",
                "aliases, line 8: name must be local",
                "aliases, line 9: name must be local",
                "aliases, line 10: need name:value pair",
                "aliases, line 11: need name:value pair",
                "aliases, line 21: duplicate entry: \"a1\"",
                "aliases, line 22: duplicate entry: \"a1\"",
            ]
        );
    }

    /// Lines Postfix stores with an empty name or value are skipped here.
    #[test]
    fn empty_name_or_value_is_skipped() {
        for line in ["\"\": x", "b12: \\", "(x): \\"] {
            let (entries, warnings) = parse_aliases("f", line);
            assert!(entries.is_empty(), "{line}");
            assert_eq!(warnings, vec!["f, line 1: need name:value pair"], "{line}");
        }
    }

    #[test]
    fn orphan_continuation_is_a_warning() {
        let (entries, warnings) = parse_aliases("f", "  x: y\na: b\n");
        assert_eq!(entries.len(), 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("f, line 1: "), "{warnings:?}");
    }

    /// Destinations as Postfix 3.7's local(8) finds them. These follow
    /// tok822_parse() and local/token.c read from Postfix's source; local(8)
    /// cannot be run on its own here, so they were not run against it.
    #[test]
    fn alias_values() {
        let a = |s: &str| Address(s.to_string());
        let cases: Vec<(&str, Vec<AliasTarget>)> = vec![
            ("jerry", vec![a("jerry")]),
            ("x, y,z", vec![a("x"), a("y"), a("z")]),
            // White space separates destinations.
            ("a b", vec![a("a"), a("b")]),
            ("x y@z", vec![a("x"), a("y@z")]),
            ("a . b @ c . d", vec![a("a.b@c.d")]),
            ("a, , b", vec![a("a"), a("b")]),
            (
                "|/usr/bin/procmail -a x",
                vec![Command("/usr/bin/procmail".into()), a("-a"), a("x")],
            ),
            (
                "\"|/usr/bin/vacation  jerry\"",
                vec![Command("/usr/bin/vacation  jerry".into())],
            ),
            ("|\"cmd arg\"", vec![Command("cmd arg".into())]),
            ("\"|cmd\" arg", vec![Command("cmd".into()), a("arg")]),
            ("/var/log/x.mbox", vec![File("/var/log/x.mbox".into())]),
            (
                "\"/file with space\"",
                vec![File("/file with space".into())],
            ),
            (":include:/etc/list", vec![Include("/etc/list".into())]),
            (":INCLUDE:/etc/list", vec![Include("/etc/list".into())]),
            (":include:\"/a b\"", vec![Include("/a b".into())]),
            ("<user@dom>", vec![a("user@dom")]),
            (
                "Jerry Smith <js@example.com> (the boss)",
                vec![a("js@example.com")],
            ),
            ("x, Name <u@d>, y", vec![a("x"), a("u@d"), a("y")]),
            ("<a b>", vec![a("ab")]),
            ("x (comment) y", vec![a("x"), a("y")]),
            ("(just a comment), x", vec![a("x")]),
            ("\"quoted local\"@dom", vec![a("\"quoted local\"@dom")]),
            ("\"a@b\"@dom", vec![a("\"a@b\"@dom")]),
            ("\"x,y\"", vec![a("\"x,y\"")]),
            ("x\\,y", vec![a("\"x,y\"")]),
            ("\"plain\"", vec![a("plain")]),
            ("\\me", vec![a("\\me")]),
            ("\\me@dom", vec![a("me@dom")]),
            ("list: a, b;", vec![a("a"), a("b")]),
            ("x@[1.2.3.4]", vec![a("x@[1.2.3.4]")]),
            ("é, ü@dom", vec![a("é"), a("ü@dom")]),
            ("@a:b@c", vec![a("@a:b@c")]),
            ("<>, x", vec![a("x")]),
            ("x,", vec![a("x")]),
        ];
        for (value, want) in cases {
            assert_eq!(parse_alias_value(value), Ok(want), "{value}");
        }
    }

    #[test]
    fn bad_alias_values() {
        let cases: &[(&str, &str)] = &[
            ("\"open", "unterminated quoted string"),
            ("x, \"open, y", "unterminated quoted string"),
            ("a (b", "unterminated comment"),
            ("x@[1.2.3.4", "unterminated domain literal"),
            ("a )", "unbalanced ')'"),
            ("\\", "backslash at end of text"),
            ("x\\", "backslash at end of text"),
            ("\"\"", "empty address"),
            ("|", "empty command"),
            ("\"| \"", "empty command"),
            (":include:", ":include: requires an absolute path name"),
            (":include:etc/x", ":include: requires an absolute path name"),
            ("~/mbox", "home directory"),
            ("", "no destination"),
            ("<>", "no destination"),
            ("(only a comment)", "no destination"),
        ];
        for (value, want) in cases {
            match parse_alias_value(value) {
                Err(e) => assert!(e.contains(want), "{value}: {e}"),
                Ok(t) => panic!("{value}: accepted as {t:?}"),
            }
        }
    }

    #[test]
    fn include_files() {
        let text = "# team\n\
                    jerry, tom\n\
                    \n   # indented comment\n\
                    \"|/bin/true\"\r\n\
                    \\me , :include:/etc/more\n\
                    /var/spool/archive\n";
        assert_eq!(
            parse_include_file(text),
            Ok(vec![
                Address("jerry".into()),
                Address("tom".into()),
                Command("/bin/true".into()),
                Address("\\me".into()),
                Include("/etc/more".into()),
                File("/var/spool/archive".into()),
            ])
        );
        // An empty .forward file: no destination, not an error.
        assert_eq!(parse_include_file(""), Ok(vec![]));
        assert_eq!(parse_include_file("# nothing\n\n"), Ok(vec![]));
        // A quote does not continue on the next line.
        let err = parse_include_file("a\n\"b\nc\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2: unterminated quoted string"),
            "{err}"
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let long = "x".repeat(200_000);
        let wide = "é".repeat(100_000);
        let deep = "(".repeat(100_000);
        // Source files: warnings or entries, never a panic.
        let text = format!(
            "a: {long}\nb: \"{long}\n\\\n:\n\"\":x\né: ü, \\\nc: {deep}\nd: {wide}\"\n\
             e: ,,,,;;;<<<>>>:::\nf: \u{0}\"\\"
        );
        let (entries, _warnings) = parse_aliases("f", &text);
        let a = entries
            .iter()
            .find(|e| e.name == "a")
            .map(|e| e.value.len());
        assert_eq!(a, Some(200_000));
        let b = entries
            .iter()
            .find(|e| e.name == "b")
            .map(|e| e.value.len());
        assert_eq!(b, Some(200_002));
        // A long list of addresses is fine.
        let many = vec!["user@example.com"; 20_000].join(", ");
        assert_eq!(parse_alias_value(&many).map(|t| t.len()), Ok(20_000));
        assert_eq!(parse_alias_value(&long), Ok(vec![Address(long.clone())]));
        // Faults come back as errors, their excerpts cut on a character.
        for bad in [
            format!("\"{long}"),
            format!("\"{wide}"),
            deep.clone(),
            format!("{wide}\\"),
            ")".repeat(1000),
        ] {
            let err = parse_alias_value(&bad).unwrap_err();
            assert!(err.len() < 400, "{}", err.len());
        }
        for odd in [
            "<<<>>>,(((,)))",
            "\"\\",
            ">>>>",
            ";;;:::",
            ":::;;;",
            "<",
            "a: b: c;",
            "@",
            "x<y>z<w>",
            "\u{0}",
        ] {
            let _ = parse_alias_value(odd);
            let _ = parse_include_file(odd);
        }
        let _ = parse_include_file("é\u{0}\n\"\n\\");
    }
}
