//! `$name` expansion with Postfix's rules (mac_expand(3), postconf(5)):
//!
//! | form                      | expands to                                        |
//! |---------------------------|---------------------------------------------------|
//! | `$name` `${name}` `$(name)` | the value of name, itself expanded              |
//! | `${name?text}` `${name?{text}}` | text when name's value is non-empty         |
//! | `${name:text}` `${name:{text}}` | text when name is undefined or empty        |
//! | `${name?{a}:{b}}`         | a when name's value is non-empty, else b          |
//! | `${{x} op {y} ? {a} : {b}}` | a when the comparison holds, else b (`==` `!=` `<` `<=` `>` `>=`; numeric when both sides are integers) |
//! | `$$`                      | `$`                                               |
//!
//! An undefined name expands to nothing and is reported in
//! [`Expansion::undefined`]. A name that refers back to itself is an error that
//! lists the chain, never a hang. Nesting is limited to [`MAX_DEPTH`].

/// Deepest nesting of references and `${...}` constructs accepted.
pub const MAX_DEPTH: usize = 100;

/// The result of expanding a text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    pub value: String,
    /// Names that were referenced but are not defined, in order, once each.
    pub undefined: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `a -> b -> a`: the chain of names, first to the repeated one.
    Recursion(Vec<String>),
    /// Malformed `$` syntax; the message says what and where.
    Syntax(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Recursion(chain) => {
                let path: Vec<String> = chain.iter().map(|n| format!("${n}")).collect();
                write!(f, "recursive expansion: {}", path.join(" -> "))
            }
            ExpandError::Syntax(msg) => f.write_str(msg),
            ExpandError::TooDeep(text) => write!(f, "unreasonable macro call nesting: \"{text}\""),
        }
    }
}

/// Expands `text`, looking names up with `lookup`, which returns a name's raw
/// (unexpanded) value or `None` when the name is undefined.
pub fn expand<'a, F>(text: &str, lookup: F) -> Result<Expansion, ExpandError>
where
    F: Fn(&str) -> Option<&'a str>,
{
    expand_as(text, None, lookup)
}

/// Like [`expand`], for the value of parameter `name`: a reference back to
/// `name` is reported as recursion.
pub fn expand_as<'a, F>(text: &str, name: Option<&str>, lookup: F) -> Result<Expansion, ExpandError>
where
    F: Fn(&str) -> Option<&'a str>,
{
    let mut ex = Expander {
        lookup: &lookup,
        stack: name.map(|n| vec![n.to_string()]).unwrap_or_default(),
        undefined: Vec::new(),
        depth: 0,
    };
    let mut value = String::with_capacity(text.len());
    ex.text(text, &mut value)?;
    Ok(Expansion {
        value,
        undefined: ex.undefined,
    })
}

/// Whether `text` contains a `$` construct (other than `$$`), that is,
/// whether its expansion can differ from the text with `$$` folded.
pub fn has_macros(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            return true;
        }
        i += 1;
    }
    false
}

/// The names `text` refers to, without expanding anything. Syntax errors are
/// ignored here; [`expand`] reports them.
pub fn referenced_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        i += 1;
        match b.get(i) {
            Some(b'$') => i += 1,
            Some(b'{') | Some(b'(') => {
                // Names inside the rest of the construct are found as the
                // scan goes on.
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                let name_start = i;
                while i < b.len() && is_name_byte(b[i]) {
                    i += 1;
                }
                if i > name_start {
                    names.push(text[name_start..i].to_string());
                }
            }
            Some(&c) if is_name_byte(c) => {
                let start = i;
                while i < b.len() && is_name_byte(b[i]) {
                    i += 1;
                }
                names.push(text[start..i].to_string());
            }
            _ => {}
        }
    }
    names
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

struct Expander<'l, F> {
    lookup: &'l F,
    /// Names being expanded, outermost first.
    stack: Vec<String>,
    undefined: Vec<String>,
    depth: usize,
}

impl<'a, F> Expander<'_, F>
where
    F: Fn(&str) -> Option<&'a str>,
{
    /// Expands `text` into `out`.
    fn text(&mut self, text: &str, out: &mut String) -> Result<(), ExpandError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExpandError::TooDeep(text.to_string()));
        }
        let b = text.as_bytes();
        let mut i = 0;
        let mut plain_start = 0;
        while i < b.len() {
            if b[i] != b'$' {
                i += 1;
                continue;
            }
            out.push_str(&text[plain_start..i]);
            let dollar = i;
            i += 1;
            match b.get(i) {
                Some(b'$') => {
                    out.push('$');
                    i += 1;
                }
                Some(&open @ (b'{' | b'(')) => {
                    let close = if open == b'{' { b'}' } else { b')' };
                    let Some(end) = find_close(b, i, open, close) else {
                        return Err(ExpandError::Syntax(format!(
                            "missing '{}' in \"{}\"",
                            close as char,
                            &text[dollar..]
                        )));
                    };
                    self.construct(&text[i + 1..end], out)?;
                    i = end + 1;
                }
                Some(&c) if is_name_byte(c) => {
                    let start = i;
                    while i < b.len() && is_name_byte(b[i]) {
                        i += 1;
                    }
                    self.reference(&text[start..i], out)?;
                }
                _ => {
                    return Err(ExpandError::Syntax(format!("empty macro name: \"{text}\"")));
                }
            }
            plain_start = i;
        }
        out.push_str(&text[plain_start..]);
        self.depth -= 1;
        Ok(())
    }

    /// The inside of `${...}` or `$(...)`.
    fn construct(&mut self, inner: &str, out: &mut String) -> Result<(), ExpandError> {
        let body = inner.trim_start();
        if body.starts_with('{') {
            return self.relational(body, out);
        }
        let name_len = body.bytes().take_while(|&c| is_name_byte(c)).count();
        let name = &body[..name_len];
        if name.is_empty() {
            return Err(ExpandError::Syntax(format!(
                "empty macro name: \"{inner}\""
            )));
        }
        let rest = body[name_len..].trim_start();
        match rest.as_bytes().first() {
            None => self.reference(name, out),
            Some(&op @ (b'?' | b':')) => {
                let arg = &rest[1..];
                let raw = (self.lookup)(name);
                if raw.is_none() {
                    self.note_undefined(name);
                }
                let non_empty = raw.is_some_and(|v| !v.is_empty());
                let (if_set, if_unset) = if arg.trim_start().starts_with('{') {
                    let (first, after) = braced(arg.trim_start(), inner)?;
                    let after = after.trim_start();
                    if after.is_empty() {
                        if op == b'?' {
                            (Some(first), None)
                        } else {
                            (None, Some(first))
                        }
                    } else if op == b'?' && after.starts_with(':') {
                        let (second, tail) = braced(after[1..].trim_start(), inner)?;
                        if !tail.trim().is_empty() {
                            return Err(unexpected(inner, tail));
                        }
                        (Some(first), Some(second))
                    } else {
                        return Err(unexpected(inner, after));
                    }
                } else if op == b'?' {
                    (Some(arg), None)
                } else {
                    (None, Some(arg))
                };
                let chosen = if non_empty { if_set } else { if_unset };
                if let Some(text) = chosen {
                    self.text(text, out)?;
                }
                Ok(())
            }
            Some(_) => Err(ExpandError::Syntax(format!(
                "attribute name syntax error at: \"...{name}>>>{rest}\""
            ))),
        }
    }

    /// `{x} op {y} ? {a} : {b}`
    fn relational(&mut self, body: &str, out: &mut String) -> Result<(), ExpandError> {
        let (left, rest) = braced(body, body)?;
        let rest = rest.trim_start();
        let op_len = rest
            .bytes()
            .take_while(|c| matches!(c, b'=' | b'!' | b'<' | b'>'))
            .count();
        let op = &rest[..op_len];
        if !matches!(op, "==" | "!=" | "<" | "<=" | ">" | ">=") {
            return Err(ExpandError::Syntax(format!(
                "unknown operator at: \"...{}>>>{}\"",
                &body[..body.len() - rest.len()],
                rest
            )));
        }
        let (right, rest) = braced(rest[op_len..].trim_start(), body)?;
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('?') else {
            return Err(ExpandError::Syntax(format!(
                "\"?\" expected at: \"...{}>>>{}\"",
                &body[..body.len() - rest.len()],
                rest
            )));
        };
        let (if_true, rest) = braced(rest.trim_start(), body)?;
        let rest = rest.trim_start();
        let if_false = if let Some(r) = rest.strip_prefix(':') {
            let (f, tail) = braced(r.trim_start(), body)?;
            if !tail.trim().is_empty() {
                return Err(unexpected(body, tail));
            }
            Some(f)
        } else if rest.is_empty() {
            None
        } else {
            return Err(unexpected(body, rest));
        };
        let mut l = String::new();
        self.text(left, &mut l)?;
        let mut r = String::new();
        self.text(right, &mut r)?;
        let ord = match (l.trim().parse::<i64>(), r.trim().parse::<i64>()) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => l.cmp(&r),
        };
        use std::cmp::Ordering::*;
        let holds = match op {
            "==" => ord == Equal,
            "!=" => ord != Equal,
            "<" => ord == Less,
            "<=" => ord != Greater,
            ">" => ord == Greater,
            _ => ord != Less,
        };
        let chosen = if holds { Some(if_true) } else { if_false };
        if let Some(text) = chosen {
            self.text(text, out)?;
        }
        Ok(())
    }

    fn reference(&mut self, name: &str, out: &mut String) -> Result<(), ExpandError> {
        if let Some(pos) = self.stack.iter().position(|n| n == name) {
            let mut chain: Vec<String> = self.stack[pos..].to_vec();
            chain.push(name.to_string());
            return Err(ExpandError::Recursion(chain));
        }
        match (self.lookup)(name) {
            Some(raw) => {
                self.stack.push(name.to_string());
                self.text(raw, out)?;
                self.stack.pop();
                Ok(())
            }
            None => {
                self.note_undefined(name);
                Ok(())
            }
        }
    }

    fn note_undefined(&mut self, name: &str) {
        if !self.undefined.iter().any(|n| n == name) {
            self.undefined.push(name.to_string());
        }
    }
}

fn unexpected(whole: &str, at: &str) -> ExpandError {
    ExpandError::Syntax(format!(
        "unexpected input at: \"...{}>>>{}\"",
        &whole[..whole.len().saturating_sub(at.len())],
        at
    ))
}

/// Parses `{text}` at the start of `s` (which must start with `{`); returns
/// the text with white space after `{` and before `}` removed, and the rest.
fn braced<'s>(s: &'s str, whole: &str) -> Result<(&'s str, &'s str), ExpandError> {
    let b = s.as_bytes();
    if b.first() != Some(&b'{') {
        return Err(ExpandError::Syntax(format!(
            "\"{{\" expected at: \"...{}>>>{}\"",
            &whole[..whole.len().saturating_sub(s.len())],
            s
        )));
    }
    let Some(end) = find_close(b, 0, b'{', b'}') else {
        return Err(ExpandError::Syntax(format!("missing '}}' in \"{whole}\"")));
    };
    Ok((s[1..end].trim(), &s[end + 1..]))
}

/// Index of the bracket closing the one at `open_at`, counting nesting.
fn find_close(b: &[u8], open_at: usize, open: u8, close: u8) -> Option<usize> {
    let mut level = 0usize;
    for (i, &c) in b.iter().enumerate().skip(open_at) {
        if c == open {
            level += 1;
        } else if c == close {
            level -= 1;
            if level == 0 {
                return Some(i);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("myhostname", "mail.xian.com"),
            ("mydomain", "xian.com"),
            ("myorigin", "$myhostname"),
            (
                "mydestination",
                "$myhostname, localhost.$mydomain, localhost, $mydomain",
            ),
            ("empty", ""),
            ("indirect_empty", "$empty"),
            ("loop_a", "x $loop_b"),
            ("loop_b", "${loop_a}"),
            ("self", "$self"),
            ("num", "10"),
        ])
    }

    fn ex(text: &str) -> Result<String, ExpandError> {
        let t = table();
        expand(text, |n| t.get(n).copied()).map(|e| e.value)
    }

    #[test]
    fn table_of_forms() {
        let cases: &[(&str, &str)] = &[
            ("plain text", "plain text"),
            ("$myhostname", "mail.xian.com"),
            ("${myhostname}", "mail.xian.com"),
            ("$(myhostname)", "mail.xian.com"),
            ("$myorigin", "mail.xian.com"),
            (
                "$mydestination",
                "mail.xian.com, localhost.xian.com, localhost, xian.com",
            ),
            ("a$$b", "a$b"),
            ("$$myhostname", "$myhostname"),
            ("[$undefined]", "[]"),
            ("${mydomain?yes}", "yes"),
            ("${empty?yes}", ""),
            ("${undefined?yes}", ""),
            ("${mydomain:no}", ""),
            ("${empty:dflt}", "dflt"),
            ("${undefined:dflt}", "dflt"),
            ("${mydomain?{A}:{B}}", "A"),
            ("${empty?{A}:{B}}", "B"),
            ("${undefined?{A}:{B}}", "B"),
            ("${mydomain?{ A }}", "A"),
            ("${empty:{ B }}", "B"),
            ("${mydomain ? x}", " x"),
            ("${mydomain?a:b}", "a:b"),
            ("$(empty:$(mydomain?{p}:{q}))", "p"),
            ("${mydomain?$myhostname}", "mail.xian.com"),
            ("${mydomain?{$$}}", "$"),
            // The test is on the raw value: "$empty" is not empty.
            ("${indirect_empty?set}", "set"),
            ("${{1} < {2}?{lt}:{ge}}", "lt"),
            ("${{10} < {9}?{lt}:{ge}}", "ge"),
            ("${{a} <= {b}?{le}:{gt}}", "le"),
            ("${ {x} == {x} ? {eq} : {ne} }", "eq"),
            ("${{$num} >= {10} ? {big}}", "big"),
            ("${{$mydomain} != {xian.com} ? {other} : {same}}", "same"),
            ("${mydomain}x$(mydomain)y", "xian.comxxian.comy"),
        ];
        for (input, want) in cases {
            assert_eq!(ex(input).as_deref(), Ok(*want), "input: {input}");
        }
    }

    #[test]
    fn undefined_names_are_reported_once() {
        let t = table();
        let e = expand("$nope ${nope} ${other:x}", |n| t.get(n).copied()).unwrap();
        assert_eq!(e.undefined, vec!["nope".to_string(), "other".to_string()]);
    }

    #[test]
    fn loops_are_errors_naming_the_chain() {
        assert_eq!(
            ex("$loop_a"),
            Err(ExpandError::Recursion(vec![
                "loop_a".into(),
                "loop_b".into(),
                "loop_a".into()
            ]))
        );
        let t = table();
        assert_eq!(
            expand_as("$self", Some("self"), |n| t.get(n).copied()),
            Err(ExpandError::Recursion(vec!["self".into(), "self".into()]))
        );
        // A parameter that refers to itself through its own name.
        assert!(matches!(
            expand_as("x, $mydomain, $alias_maps", Some("alias_maps"), |n| t
                .get(n)
                .copied()),
            Err(ExpandError::Recursion(_))
        ));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "$",
            "$myhostname $",
            "${mydomain",
            "$(mydomain",
            "${foo bar}",
            "${}",
            "${mydomain:{a}:{b}}",
            "${mydomain?{a}x}",
            "${{a} =~ {b} ? {x}}",
            "${{a} == {b} {x}}",
        ] {
            assert!(
                matches!(ex(bad), Err(ExpandError::Syntax(_))),
                "{bad}: {:?}",
                ex(bad)
            );
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "${mydomain?".repeat(500) + &"}".repeat(500);
        assert!(matches!(ex(&deep), Err(ExpandError::TooDeep(_))));
    }

    #[test]
    fn referenced_names_finds_all_forms() {
        assert_eq!(
            referenced_names("$a ${b} $(c) ${d?$e} $$f ${ {$g} == {x} ? {y}}"),
            vec!["a", "b", "c", "d", "e", "g"]
        );
    }
}
