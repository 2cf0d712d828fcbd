//! The aliases(5) format, and alias values as local(8) reads them.
//!
//! Source (what postalias and newaliases read):
//!
//! ```text
//! # comment
//! postmaster: root
//! staff:      jerry, tom,
//!             "|/usr/bin/procmail", /var/log/staff.mbox,
//!             :include:/etc/ironpost/staff.list
//! "odd name": jerry
//! ```
//!
//! - Logical lines as everywhere (continuations start with white space).
//! - The name ends at the first `:` outside double quotes; quotes are
//!   removed and the name is folded to lower case. A name with `@` is
//!   refused (`name must be local`), as is a line without a name or value
//!   (`need name:value pair`). The first of duplicate names wins.
//! - The value is stored normalized as Postfix's postalias stores it:
//!   elements separated by `, `, white space runs outside quotes folded to
//!   one space, an element with backslash escapes written as a quoted
//!   string (`x\,y` becomes `"x,y"`, `\root` becomes `root`), an
//!   unterminated quote closed.
//!
//! Values ([`parse_alias_value`]) hold addresses (`user`, `user@domain`,
//! `Name <user@domain>`, `"quoted local"@domain`), `/file/name`,
//! `|command` (quoted when it has spaces: `"|cmd arg"`) and
//! `:include:/file/name`; RFC 822 comments in parentheses are dropped.
//! `.forward` and `:include:` files ([`parse_include_file`]) hold the same
//! on as many lines as they like; `\user` there means the user's own
//! mailbox.

use ironpost_conf::lines::logical_lines;

/// One alias from a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    /// Lower case, quotes removed.
    pub name: String,
    /// The normalized value, as stored in the index.
    pub value: String,
    pub line: usize,
}

/// One destination of an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasTarget {
    /// An address; `\user` keeps its backslash (own mailbox, in .forward).
    Address(String),
    /// `/file/name`: append to the file.
    File(String),
    /// `|command`, without the bar.
    Command(String),
    /// `:include:/file/name`.
    Include(String),
}

/// The longest value element kept (a defence against absurd input).
const MAX_ELEMENT: usize = 64 * 1024;

/// Parses an aliases(5) source file. Warnings come back formatted as
/// `FILE, line N: ...`.
pub fn parse_aliases(file: &str, text: &str) -> (Vec<AliasEntry>, Vec<String>) {
    let (lines, line_warnings) = logical_lines(text);
    let mut warnings: Vec<String> = line_warnings
        .into_iter()
        .map(|w| format!("{file}, line {}: {}", w.line, w.text))
        .collect();
    let mut entries: Vec<AliasEntry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in lines {
        let Some((raw_name, value)) = split_name(&line.text) else {
            warnings.push(format!("{file}, line {}: need name:value pair", line.first));
            continue;
        };
        let name = unquote(raw_name.trim()).to_lowercase();
        let value = normalize_value(value);
        if name.is_empty() || value.is_empty() {
            warnings.push(format!("{file}, line {}: need name:value pair", line.first));
            continue;
        }
        if name.contains('@') {
            warnings.push(format!("{file}, line {}: name must be local", line.first));
            continue;
        }
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

/// Splits at the first `:` outside quotes.
fn split_name(line: &str) -> Option<(&str, &str)> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c != '"' {
            out.push(c);
        }
    }
    out
}

/// Splits a value at top-level commas (outside quotes, angle brackets and
/// comments). Elements are returned untrimmed; an unterminated quote runs
/// to the end.
fn split_elements(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle = 0usize;
    let mut paren = 0usize;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                cur.push(c);
            }
            '"' if paren == 0 => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            '(' if !in_quotes => {
                paren += 1;
                cur.push(c);
            }
            ')' if !in_quotes && paren > 0 => {
                paren -= 1;
                cur.push(c);
            }
            '<' if !in_quotes && paren == 0 => {
                angle += 1;
                cur.push(c);
            }
            '>' if !in_quotes && paren == 0 && angle > 0 => {
                angle -= 1;
                cur.push(c);
            }
            ',' if !in_quotes && angle == 0 && paren == 0 => {
                out.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
        if cur.len() > MAX_ELEMENT {
            cur.truncate(MAX_ELEMENT);
        }
    }
    out.push(cur);
    out
}

/// One element as postalias writes it: trimmed, white space folded outside
/// quotes, escapes turned into a quoted string, quotes closed.
fn normalize_element(e: &str) -> String {
    let e = e.trim();
    if e.contains('\\') && !e.starts_with('"') {
        // `x\,y` → "x,y"; `\root` → root (no quoting needed).
        let plain = unquote(e);
        let needs_quotes =
            plain.contains(|c: char| c.is_whitespace() || ",:;<>@()[]\"".contains(c));
        return if needs_quotes {
            format!("\"{}\"", plain.replace('"', "\\\""))
        } else {
            plain
        };
    }
    let mut out = String::with_capacity(e.len());
    let mut in_quotes = false;
    let mut escaped = false;
    let mut last_space = false;
    for c in e.chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            out.push(c);
            continue;
        }
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if c.is_whitespace() && !in_quotes {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = false;
        out.push(c);
    }
    if in_quotes {
        out.push('"');
    }
    out
}

/// The value as stored: normalized elements joined with `, `.
fn normalize_value(value: &str) -> String {
    if value.trim().is_empty() {
        return String::new();
    }
    split_elements(value)
        .iter()
        .map(|e| normalize_element(e))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Removes RFC 822 comments (parentheses outside quotes).
fn strip_comments(e: &str) -> Result<String, String> {
    let mut out = String::with_capacity(e.len());
    let mut in_quotes = false;
    let mut escaped = false;
    let mut depth = 0usize;
    for c in e.chars() {
        if escaped {
            if depth == 0 {
                out.push(c);
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            '(' if !in_quotes => depth += 1,
            ')' if !in_quotes && depth > 0 => depth -= 1,
            ')' if !in_quotes => return Err(format!("unbalanced ')' in \"{e}\"")),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if depth > 0 {
        return Err(format!("unbalanced '(' in \"{e}\""));
    }
    if in_quotes {
        return Err(format!("unterminated quote in \"{e}\""));
    }
    Ok(out.trim().to_string())
}

fn is_quoted_whole(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('"') && s.ends_with('"')
}

fn element_target(raw: &str) -> Result<Option<AliasTarget>, String> {
    let e = strip_comments(raw)?;
    if e.is_empty() {
        return Ok(None);
    }
    // Name <address>: the address.
    let e = match (e.rfind('<'), e.ends_with('>')) {
        (Some(start), true) if !is_quoted_whole(&e) => e[start + 1..e.len() - 1].trim().to_string(),
        _ => e,
    };
    if e.is_empty() {
        return Ok(None);
    }
    let content = if is_quoted_whole(&e) {
        let inner = unquote(&e);
        if inner.starts_with('|') || inner.starts_with('/') {
            inner
        } else {
            // A quoted local part without a domain: an address.
            return Ok(Some(AliasTarget::Address(e)));
        }
    } else {
        e
    };
    if let Some(cmd) = content.strip_prefix('|') {
        let cmd = cmd.trim();
        if cmd.is_empty() {
            return Err("empty command after \"|\"".to_string());
        }
        return Ok(Some(AliasTarget::Command(cmd.to_string())));
    }
    if content.len() >= 9 && content[..9].eq_ignore_ascii_case(":include:") {
        let path = content[9..].trim();
        if path.is_empty() {
            return Err("empty file name after :include:".to_string());
        }
        return Ok(Some(AliasTarget::Include(path.to_string())));
    }
    if content.starts_with('/') {
        return Ok(Some(AliasTarget::File(content)));
    }
    if content.chars().any(|c| c.is_control()) {
        return Err(format!("control character in \"{content}\""));
    }
    Ok(Some(AliasTarget::Address(content)))
}

/// Parses an alias value into its destinations.
pub fn parse_alias_value(value: &str) -> Result<Vec<AliasTarget>, String> {
    let mut out = Vec::new();
    for e in split_elements(value) {
        if let Some(t) = element_target(&e)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// Parses a `:include:` or `.forward` file: the same syntax over any number
/// of lines; lines starting with `#` are comments.
pub fn parse_include_file(text: &str) -> Result<Vec<AliasTarget>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.extend(parse_alias_value(t)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_as_postalias_stores_it() {
        // Each value and warning below is what Postfix 3.7's postalias
        // stored (postalias -s) or printed for the same input.
        let text = "a1: x  ,y,   z\nA2: \"|cmd  two spaces\" , /file/path\na3: :include:/etc/list, <user@dom>, User Name <u@d>\na4: x (comment) ,y\n\"q name\": x\na5:\na6:    \na7: \"quoted local\"@dom\na8: x y z\na9: x\\,y\na10: \\root, jerry\na11: \n  cont\n\"a12 : odd\": v\na13: \"unterminated\n:nobody: x\nb@c: d\nb1: x    y\nb2: a, ,b\nb5: <>\nb7: |/usr/bin/procmail -a x\nb8: :INCLUDE:/x/y\na1: duplicate\n";
        let (entries, warnings) = parse_aliases("al", text);
        let got: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a1", "x, y, z"),
                ("a2", "\"|cmd  two spaces\", /file/path"),
                ("a3", ":include:/etc/list, <user@dom>, User Name <u@d>"),
                ("a4", "x (comment), y"),
                ("q name", "x"),
                ("a7", "\"quoted local\"@dom"),
                ("a8", "x y z"),
                ("a9", "\"x,y\""),
                ("a10", "root, jerry"),
                ("a11", "cont"),
                ("a12 : odd", "v"),
                ("a13", "\"unterminated\""),
                ("b1", "x y"),
                ("b2", "a, , b"),
                ("b5", "<>"),
                ("b7", "|/usr/bin/procmail -a x"),
                ("b8", ":INCLUDE:/x/y"),
            ]
        );
        assert_eq!(
            warnings,
            vec![
                "al, line 6: need name:value pair",
                "al, line 7: need name:value pair",
                "al, line 16: need name:value pair",
                "al, line 17: name must be local",
                "al, line 23: duplicate entry: \"a1\"",
            ]
        );
    }

    #[test]
    fn values() {
        use AliasTarget::*;
        assert_eq!(
            parse_alias_value("jerry, tom@example.com, \"|/usr/bin/vacation jerry\", /var/log/x, :include:/etc/list, Jerry Smith <js@example.com> (the boss), \"quoted local\"@dom, \\me").unwrap(),
            vec![
                Address("jerry".into()),
                Address("tom@example.com".into()),
                Command("/usr/bin/vacation jerry".into()),
                File("/var/log/x".into()),
                Include("/etc/list".into()),
                Address("js@example.com".into()),
                Address("\"quoted local\"@dom".into()),
                Address("\\me".into()),
            ]
        );
        assert_eq!(
            parse_alias_value("|/bin/cat").unwrap(),
            vec![Command("/bin/cat".into())]
        );
        assert_eq!(parse_alias_value("a, , b").unwrap().len(), 2);
        assert_eq!(parse_alias_value("(just a comment)").unwrap(), vec![]);
        for bad in ["\"open", "a (b", "a )", "|", ":include:"] {
            assert!(parse_alias_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn include_files() {
        let t = parse_include_file("# team\njerry, tom\n\n  \"|/bin/true\"\n\\me\n").unwrap();
        assert_eq!(
            t,
            vec![
                AliasTarget::Address("jerry".into()),
                AliasTarget::Address("tom".into()),
                AliasTarget::Command("/bin/true".into()),
                AliasTarget::Address("\\me".into()),
            ]
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let long = "x".repeat(200_000);
        let (e, _) = parse_aliases(
            "f",
            &format!("a: {long}\nb: \"{long}\n\\\n:\n\"\":x\né: ü, \\"),
        );
        assert!(e.iter().all(|e| e.value.len() <= 200_100));
        let _ = parse_alias_value("\\");
        let _ = parse_alias_value("\"\\");
        let _ = parse_alias_value("<<<>>>,(((,)))");
        let _ = parse_include_file("é\u{0}\n\"");
    }
}
