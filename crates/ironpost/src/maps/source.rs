//! The source format of postmap(1): one `key whitespace value` entry per
//! logical line, as Postfix reads `/etc/postfix/virtual`, `access`,
//! `transport` and friends.
//!
//! - Logical lines: continuation lines start with white space; comments and
//!   blank lines are skipped (see [`ironpost_conf::lines`]).
//! - The key is the text up to the first white space outside double quotes
//!   (quotes stay part of the key); the value is the rest, trimmed. Keys are folded to lower case unless asked not to (`postmap -f`).
//! - A line with a key and no value is skipped with Postfix's warning
//!   `expected format: key whitespace value -- ignoring this line`.
//! - A key that ends in `:` draws `record is in "key: value" format; is this
//!   an alias file?` and is kept, as Postfix keeps it.
//! - The first of duplicate keys wins, with `duplicate entry: "key"`, unless
//!   `last_wins` is asked for (`postmap -r`).

use ironpost_conf::lines::logical_lines;

/// One `key value` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub key: String,
    pub value: String,
    /// First physical line of the entry.
    pub line: usize,
}

/// How to read a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOptions {
    /// Fold keys to lower case (postmap's default; `-f` turns it off).
    pub fold_case: bool,
    /// Later duplicates replace earlier ones (`postmap -r`).
    pub last_wins: bool,
    /// Report duplicate keys (`postmap -w` turns it off).
    pub warn_duplicates: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            fold_case: true,
            last_wins: false,
            warn_duplicates: true,
        }
    }
}

/// Parses a source file; `file` names it in warnings, which come back
/// formatted as `FILE, line N: ...`.
pub fn parse_source(
    file: &str,
    text: &str,
    opts: SourceOptions,
) -> (Vec<SourceEntry>, Vec<String>) {
    let (lines, line_warnings) = logical_lines(text);
    let mut warnings: Vec<String> = line_warnings
        .into_iter()
        .map(|w| format!("{file}, line {}: {}", w.line, w.text))
        .collect();
    let mut entries: Vec<SourceEntry> = Vec::with_capacity(lines.len());
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in lines {
        let text = line.text.trim();
        let (key, value) = match key_end(text) {
            Some(pos) => (&text[..pos], text[pos..].trim()),
            None => (text, ""),
        };
        if value.is_empty() {
            warnings.push(format!(
                "{file}, line {}: expected format: key whitespace value -- ignoring this line",
                line.first
            ));
            continue;
        }
        if key.ends_with(':') {
            warnings.push(format!(
                "{file}, line {}: record is in \"key: value\" format; is this an alias file?",
                line.first
            ));
        }
        let key = if opts.fold_case {
            key.to_lowercase()
        } else {
            key.to_string()
        };
        let entry = SourceEntry {
            key,
            value: value.to_string(),
            line: line.first,
        };
        match index.get(&entry.key) {
            Some(&at) => {
                if opts.warn_duplicates {
                    warnings.push(format!(
                        "{file}, line {}: duplicate entry: \"{}\"",
                        line.first, entry.key
                    ));
                }
                if opts.last_wins {
                    entries[at] = entry;
                }
            }
            None => {
                index.insert(entry.key.clone(), entries.len());
                entries.push(entry);
            }
        }
    }
    (entries, warnings)
}

/// Where the key ends: the first white space outside double quotes
/// (`"quoted key" value` has the key `"quoted key"`, as in Postfix).
fn key_end(text: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c.is_ascii_whitespace() && !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_postmap() {
        // The same input was fed to Postfix 3.7's postmap; `postmap -s`
        // listed these entries and printed these warnings.
        let text = "# c\nFoo@Example.com   bar baz  \nfoo@example.com dup\n  continued\nkeyonly\n\"quoted key\" v\nalias: x\n@example.com catch\n";
        let (entries, warnings) = parse_source("virt", text, SourceOptions::default());
        let got: Vec<(&str, &str, usize)> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("foo@example.com", "bar baz", 2),
                ("\"quoted key\"", "v", 6),
                ("alias:", "x", 7),
                ("@example.com", "catch", 8),
            ]
        );
        assert_eq!(
            warnings,
            vec![
                "virt, line 3: duplicate entry: \"foo@example.com\"",
                "virt, line 5: expected format: key whitespace value -- ignoring this line",
                "virt, line 7: record is in \"key: value\" format; is this an alias file?",
            ]
        );
    }

    #[test]
    fn options() {
        let text = "A 1\na 2\n";
        let (e, w) = parse_source(
            "t",
            text,
            SourceOptions {
                fold_case: false,
                ..SourceOptions::default()
            },
        );
        assert_eq!(e.len(), 2);
        assert!(w.is_empty());
        let (e, w) = parse_source(
            "t",
            text,
            SourceOptions {
                last_wins: true,
                warn_duplicates: false,
                ..SourceOptions::default()
            },
        );
        assert_eq!((e.len(), e[0].value.as_str()), (1, "2"));
        assert!(w.is_empty());
    }
}
