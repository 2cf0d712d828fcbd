//! `regexp:` (regexp_table(5), POSIX extended expressions) and `pcre:`
//! (pcre_table(5), Perl-like expressions) tables, matched with the `regex`
//! crate.
//!
//! ```text
//! /^(.*)-outgoing@(.*)$/   550 Use ${1}@${2} instead
//! !/@example\.com$/        REJECT not ours
//! if /^user/
//! /^user1@/                OK
//! endif
//! |^a/b@|                  DISCARD          (any non-alphanumeric delimiter)
//! ```
//!
//! Rules are tried in order against the whole key; the first match gives
//! the result, with `$1`, `${1}`, `$(1)` replaced by the matched groups and
//! `$$` by `$` (not in negated rules). Flags after the closing delimiter
//! toggle defaults:
//!
//! | table   | flags and defaults |
//! |---------|--------------------|
//! | regexp: | `i` case-insensitive (on), `m` multi-line (off), `x` extended syntax (on; off means POSIX basic expressions, translated) |
//! | pcre:   | `i` (on), `m` (off), `s` dot matches newline (on), `x` ignore white space (off), `A` anchored, `E` dollar at end only (what `$` does here anyway), `U` ungreedy, `X` (accepted) |
//!
//! As in Postfix, a bad rule is skipped with a warning naming the file and
//! line (`unknown regexp option`, `out of range replacement index`, an
//! invalid expression, `$number` in a negated rule, an unmatched `endif`);
//! a rule without a result gets an empty one.
//!
//! Differences: POSIX leftmost-longest matching is leftmost-first here
//! (which only changes what groups capture in rare patterns); PCRE
//! look-around, back-references, atomic groups and possessive quantifiers
//! are not supported by the `regex` crate, and such rules are skipped with
//! a warning that says so. Without `E`, PCRE lets `$` also match before a
//! final newline; here it matches only at the end.

use ironpost_conf::lines::logical_lines;
use regex::{Regex, RegexBuilder};

use super::TableError;

/// Which table syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `regexp:`, POSIX regular expressions.
    Posix,
    /// `pcre:`, Perl-compatible regular expressions.
    Pcre,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Posix => "regexp",
            Flavor::Pcre => "pcre",
        }
    }
}

/// A piece of a result: text, or a group to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

#[derive(Debug)]
enum Rule {
    Match {
        re: Regex,
        negated: bool,
        result: Vec<Piece>,
    },
    If {
        re: Regex,
        negated: bool,
        end: usize,
    },
}

/// A parsed regexp or pcre table.
#[derive(Debug)]
pub struct RegexpTable {
    rules: Vec<Rule>,
}

/// The largest compiled expression accepted (a hostile table must not eat
/// the memory).
const SIZE_LIMIT: usize = 1 << 20;

/// Splits `/pattern/flags rest` (the text after an optional `!`). Returns
/// (pattern, flags, rest).
fn split_rule(text: &str) -> Result<(String, String, &str), String> {
    let mut chars = text.char_indices();
    let Some((_, delim)) = chars.next() else {
        return Err("empty rule".into());
    };
    if delim.is_alphanumeric() || delim.is_whitespace() || delim == '\\' {
        return Err(format!(
            "regexp pattern must start with a delimiter, not \"{delim}\""
        ));
    }
    let mut pattern = String::new();
    let mut escaped = false;
    let mut end = None;
    for (i, c) in chars {
        if escaped {
            pattern.push('\\');
            pattern.push(c);
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if c == delim {
            end = Some(i + c.len_utf8());
            break;
        }
        pattern.push(c);
    }
    let Some(end) = end else {
        return Err(format!("missing '{delim}' at end of regular expression"));
    };
    let rest = &text[end..];
    let flags_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Ok((
        pattern,
        rest[..flags_len].to_string(),
        rest[flags_len..].trim(),
    ))
}

/// POSIX basic to extended syntax: `\(` `\)` `\{` `\}` become operators,
/// bare `( ) { } + ? |` become literals.
fn bre_to_ere(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('(' | ')' | '{' | '}')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            },
            '(' | ')' | '{' | '}' | '+' | '?' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Why the `regex` crate refuses a pattern, in words for the warning.
fn unsupported(pattern: &str, err: &regex::Error) -> String {
    let text = err.to_string();
    if text.contains("look-around")
        || pattern.contains("(?=")
        || pattern.contains("(?!")
        || pattern.contains("(?<=")
        || pattern.contains("(?<!")
    {
        return "look-around is not supported by this build's regular expressions".into();
    }
    if text.contains("backreferences") {
        return "back-references are not supported by this build's regular expressions".into();
    }
    if pattern.contains("(?>") || pattern.contains("*+") || pattern.contains("++") {
        return "atomic groups and possessive quantifiers are not supported by this build's regular expressions".into();
    }
    let first = text
        .lines()
        .rev()
        .find(|l| l.contains("error:"))
        .unwrap_or("Invalid regular expression");
    first.trim().trim_start_matches("error: ").to_string()
}

fn compile(pattern: &str, flags: &str, flavor: Flavor) -> Result<Regex, String> {
    let (mut i, mut m, mut s, mut x, mut anchored, mut ungreedy, mut extended) = match flavor {
        Flavor::Posix => (true, false, true, false, false, false, true),
        Flavor::Pcre => (true, false, true, false, false, false, true),
    };
    for f in flags.chars() {
        match (flavor, f) {
            (_, 'i') => i = !i,
            (_, 'm') => m = !m,
            (Flavor::Posix, 'x') => extended = !extended,
            (Flavor::Pcre, 's') => s = !s,
            (Flavor::Pcre, 'x') => x = !x,
            (Flavor::Pcre, 'A') => anchored = !anchored,
            (Flavor::Pcre, 'U') => ungreedy = !ungreedy,
            (Flavor::Pcre, 'E' | 'X') => {}
            _ => return Err(format!("unknown regexp option \"{f}\"")),
        }
    }
    if flavor == Flavor::Posix && m {
        // REG_NEWLINE: dot stops at newlines and ^ $ match at lines.
        s = false;
    }
    let body = if extended {
        pattern.to_string()
    } else {
        bre_to_ere(pattern)
    };
    let body = if anchored {
        format!("\\A(?:{body})")
    } else {
        body
    };
    RegexBuilder::new(&body)
        .case_insensitive(i)
        .multi_line(m)
        .dot_matches_new_line(s)
        .ignore_whitespace(x)
        .swap_greed(ungreedy)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| unsupported(pattern, &e))
}

/// Parses `$1 ${1} $(1) $$` in a result.
fn parse_result(text: &str, groups: usize, negated: bool) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            lit.push(c);
            continue;
        }
        let num = match chars.peek() {
            Some('$') => {
                chars.next();
                lit.push('$');
                continue;
            }
            Some(&open @ ('{' | '(')) => {
                chars.next();
                let close = if open == '{' { '}' } else { ')' };
                let mut num = String::new();
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                    num.push(d);
                }
                num
            }
            Some(d) if d.is_ascii_digit() => {
                let mut num = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    num.push(*d);
                    chars.next();
                }
                num
            }
            _ => {
                lit.push('$');
                continue;
            }
        };
        let Ok(index) = num.parse::<usize>() else {
            return Err(format!("bad replacement syntax \"${num}\""));
        };
        if negated {
            return Err("$number found in negative match replacement text".into());
        }
        if index == 0 || index >= groups {
            return Err(format!("out of range replacement index \"{index}\""));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Group(index));
    }
    if !lit.is_empty() {
        pieces.push(Piece::Text(lit));
    }
    Ok(pieces)
}

impl RegexpTable {
    /// Parses a table; `file` names it in warnings. Bad rules are skipped
    /// with a warning, as Postfix does, so this never fails.
    pub fn parse(file: &str, text: &str, flavor: Flavor) -> Result<RegexpTable, TableError> {
        let kind = flavor.name();
        let warn =
            |line: usize, msg: String| tracing::warn!("{kind} map {file}, line {line}: {msg}");
        let (lines, orphans) = logical_lines(text);
        for o in orphans {
            warn(o.line, o.text);
        }
        let mut rules: Vec<Rule> = Vec::new();
        let mut open: Vec<(usize, usize)> = Vec::new();
        for line in lines {
            let text = line.text.trim();
            let first_word = text.split_whitespace().next().unwrap_or("");
            if first_word.eq_ignore_ascii_case("endif") {
                match open.pop() {
                    Some((at, _)) => {
                        let end = rules.len();
                        if let Rule::If { end: e, .. } = &mut rules[at] {
                            *e = end;
                        }
                    }
                    None => warn(line.first, "ENDIF without IF: skipping this rule".into()),
                }
                continue;
            }
            let (is_if, rest) = if first_word.eq_ignore_ascii_case("if")
                && text[2..].starts_with(char::is_whitespace)
            {
                (true, text[2..].trim_start())
            } else {
                (false, text)
            };
            let (negated, rest) = match rest.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let parsed = split_rule(rest).and_then(|(pattern, flags, result)| {
                let re = compile(&pattern, &flags, flavor)?;
                Ok((re, result))
            });
            let (re, result) = match parsed {
                Ok(p) => p,
                Err(msg) => {
                    warn(line.first, format!("{msg}: skipping this rule"));
                    continue;
                }
            };
            if is_if {
                if !result.is_empty() {
                    warn(
                        line.first,
                        format!("ignoring extra text after IF statement: \"{result}\""),
                    );
                }
                open.push((rules.len(), line.first));
                rules.push(Rule::If {
                    re,
                    negated,
                    end: usize::MAX,
                });
                continue;
            }
            if result.is_empty() {
                warn(line.first, "no replacement text: using empty string".into());
            }
            match parse_result(result, re.captures_len(), negated) {
                Ok(pieces) => rules.push(Rule::Match {
                    re,
                    negated,
                    result: pieces,
                }),
                Err(msg) => warn(line.first, format!("{msg}: skipping this rule")),
            }
        }
        for (_, line) in &open {
            warn(*line, "IF has no matching ENDIF".into());
        }
        let len = rules.len();
        for r in &mut rules {
            if let Rule::If { end, .. } = r {
                *end = (*end).min(len);
            }
        }
        Ok(RegexpTable { rules })
    }

    /// The result of the first rule that matches `key`.
    pub fn lookup(&self, key: &str) -> Option<String> {
        let mut i = 0;
        while i < self.rules.len() {
            match &self.rules[i] {
                Rule::Match {
                    re,
                    negated,
                    result,
                } => {
                    if *negated {
                        if !re.is_match(key) {
                            return Some(render(result, None));
                        }
                    } else if let Some(caps) = re.captures(key) {
                        return Some(render(result, Some(&caps)));
                    }
                    i += 1;
                }
                Rule::If { re, negated, end } => {
                    if re.is_match(key) != *negated {
                        i += 1;
                    } else {
                        i = (*end).max(i + 1);
                    }
                }
            }
        }
        None
    }
}

fn render(pieces: &[Piece], caps: Option<&regex::Captures<'_>>) -> String {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(n) => {
                if let Some(m) = caps.and_then(|c| c.get(*n)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexp_as_postfix_answers() {
        // Results checked with Postfix 3.7's `postmap -q KEY regexp:t.re`.
        let t = RegexpTable::parse(
            "t.re",
            "/^(.*)-outgoing@(.*)$/  550 Use ${1}@${2} instead\n/^postmaster@/  OK\n!/@example\\.com$/  NOT_EXAMPLE $1\n/^CaseTest@/I  CASE\n/^casetest2@/i CASESENS\n#/x/ comment\nif /^user/\n/^user1@/ INNER1\nendif\n/[[:digit:]]{3}@/ THREEDIGITS\n|^pipe\\|delim@| PIPEDELIM\n/a b@/ SPACE\n/^multi@/ line\n   continued\n/(x)(y)/ $1$$2 $3\n/bad[/ BAD\n/noresult/\n/^dollar@/ cost $$5\n",
            Flavor::Posix,
        )
        .unwrap();
        for (key, want) in [
            (
                "list-outgoing@example.com",
                Some("550 Use list@example.com instead"),
            ),
            ("postmaster@example.com", Some("OK")),
            ("foo@other.org", None),
            ("CASETEST@example.com", None),
            ("casetest2@example.com", Some("CASESENS")),
            ("CASETEST2@example.com", None),
            ("user1@example.com", Some("INNER1")),
            ("user2@example.com", None),
            ("123@example.com", Some("THREEDIGITS")),
            ("pipe|delim@example.com", Some("PIPEDELIM")),
            ("a b@example.com", Some("SPACE")),
            ("multi@example.com", Some("line   continued")),
            ("xy@example.com", None),
            ("dollar@example.com", Some("cost $5")),
            ("noresult", Some("")),
        ] {
            assert_eq!(t.lookup(key).as_deref(), want, "{key}");
        }
    }

    #[test]
    fn pcre_as_postfix_answers() {
        // Results checked with Postfix 3.7's `postmap -q KEY pcre:t.pcre`
        // (look-around and back-references, which Postfix supports, are
        // the documented exceptions).
        let t = RegexpTable::parse(
            "t.pcre",
            "/^(?<name>\\w+)-outgoing@(.*)$/  550 Use ${1}@${2} instead\n/^casetest@/ CASE\n/^casetest2@/i CASESENS\n/^a.b@/ DOTALL\n/^c.d@/s NODOTALL\n/^ x y @ /x EXTENDED\n/^anch/A ANCHORED\n/^lazy(.+?)@/ LAZY $1\n/^ungreedy(.+)@/U UNG $1\n/^(x)(y)@/ $1-$2\n/foo/Z BADFLAG\n/bad(/ BAD\n",
            Flavor::Pcre,
        )
        .unwrap();
        for (key, want) in [
            (
                "list-outgoing@example.com",
                Some("550 Use list@example.com instead"),
            ),
            ("CASETEST@e", Some("CASE")),
            ("casetest2@e", Some("CASESENS")),
            ("CASETEST2@e", None),
            ("a\nb@e", Some("DOTALL")),
            ("c\nd@e", None),
            ("xy@e", Some("EXTENDED")),
            ("anchor", Some("ANCHORED")),
            ("lazyabc@e", Some("LAZY abc")),
            ("ungreedyabc@e", Some("UNG abc")),
            ("foo", None),
        ] {
            assert_eq!(t.lookup(key).as_deref(), want, "{key:?}");
        }
    }

    #[test]
    fn unsupported_pcre_rules_are_skipped() {
        let t = RegexpTable::parse(
            "t",
            "/(?=look)ahead@/ LOOK\n/(a)\\1@/ BACKREF\n/x/ X\n",
            Flavor::Pcre,
        )
        .unwrap();
        assert_eq!(t.rules.len(), 1);
        assert_eq!(t.lookup("x").as_deref(), Some("X"));
    }

    #[test]
    fn posix_basic_syntax_when_x_is_off() {
        let t = RegexpTable::parse("t", "/^\\(a\\)+b{2}$/x $1\n", Flavor::Posix).unwrap();
        assert_eq!(t.lookup("a+b{2}").as_deref(), Some("a"));
        assert_eq!(t.lookup("abb"), None);
    }

    #[test]
    fn hostile_tables_do_not_hang_or_panic() {
        let huge = format!("/{}/ X\n", "(a{1000}){1000}");
        let t = RegexpTable::parse("t", &huge, Flavor::Posix).unwrap();
        assert_eq!(t.rules.len(), 0);
        for text in [
            "/",
            "!",
            "if",
            "if /",
            "/a/\u{0} x",
            "é/x/",
            "/x/é y",
            "endif",
            "if /a/\nif /b/\n",
        ] {
            let _ = RegexpTable::parse("t", text, Flavor::Pcre)
                .unwrap()
                .lookup("a");
        }
    }
}
