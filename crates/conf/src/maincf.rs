//! The main.cf reader: logical lines split into `name = value` entries, with
//! the line each came from. The last definition of a name wins.

use std::path::{Path, PathBuf};

use crate::error::{ConfError, ErrorKind, Location};
use crate::lines::logical_lines;

/// One `name = value` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// The value with white space around it removed, not expanded.
    pub value: String,
    /// First physical line of the definition (1-based).
    pub line: usize,
}

/// A parsed main.cf.
#[derive(Debug, Clone, Default)]
pub struct MainCf {
    pub path: PathBuf,
    /// Every definition in file order, duplicates included.
    pub entries: Vec<Entry>,
    /// Non-fatal problems, already formatted with file and line.
    pub warnings: Vec<String>,
}

impl MainCf {
    /// Reads and parses a main.cf file.
    pub fn read(path: &Path) -> Result<MainCf, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfError::new(ErrorKind::Io(format!(
                "open {}: {}",
                path.display(),
                crate::io_reason(&e)
            )))
        })?;
        MainCf::parse(path, &text)
    }

    /// Parses main.cf text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<MainCf, ConfError> {
        let (lines, line_warnings) = logical_lines(text);
        let mut cf = MainCf {
            path: path.to_path_buf(),
            entries: Vec::with_capacity(lines.len()),
            warnings: line_warnings
                .into_iter()
                .map(|w| format!("{}: {}", path.display(), w.text))
                .collect(),
        };
        for line in lines {
            let loc = Location {
                file: path.to_path_buf(),
                line: Some(line.first),
            };
            let (name, value) = split_nameval(&line.text).map_err(|k| ConfError::new(k).at(loc))?;
            cf.entries.push(Entry {
                name: name.to_string(),
                value: value.to_string(),
                line: line.first,
            });
        }
        Ok(cf)
    }

    /// The effective (last) definition of `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.name == name)
    }

    /// Names defined more than once, each once, in file order.
    pub fn duplicates(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        let mut dups = Vec::new();
        for e in &self.entries {
            if !seen.insert(e.name.as_str()) && !dups.contains(&e.name.as_str()) {
                dups.push(e.name.as_str());
            }
        }
        dups
    }

    pub fn location(&self, line: Option<usize>) -> Location {
        Location {
            file: self.path.clone(),
            line,
        }
    }
}

/// Splits `name = value` as Postfix's split_nameval(3) does: the name ends at
/// white space or `=`; white space around `=` and at the ends is dropped.
pub fn split_nameval(line: &str) -> Result<(&str, &str), ErrorKind> {
    let text = line.trim();
    let name_end = text
        .find(|c: char| c == '=' || c.is_ascii_whitespace())
        .unwrap_or(text.len());
    let name = &text[..name_end];
    let rest = text[name_end..].trim_start();
    if name.is_empty() {
        return Err(ErrorKind::MissingName(text.to_string()));
    }
    let Some(value) = rest.strip_prefix('=') else {
        return Err(ErrorKind::MissingEquals(text.to_string()));
    };
    Ok((name, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MainCf, ConfError> {
        MainCf::parse(Path::new("/etc/ironpost/main.cf"), text)
    }

    #[test]
    fn name_value_forms() {
        for (line, name, value) in [
            ("a = b", "a", "b"),
            ("a=b", "a", "b"),
            ("a\t=\tb c  ", "a", "b c"),
            ("a =", "a", ""),
            ("a = b = c", "a", "b = c"),
            ("a = $b, ${c}", "a", "$b, ${c}"),
        ] {
            assert_eq!(split_nameval(line), Ok((name, value)), "{line}");
        }
    }

    #[test]
    fn missing_equals_names_file_and_line() {
        let err = parse("a = b\n# c\nnoequal line here\n = novalue\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/ironpost/main.cf, line 3: missing '=' after attribute name: \"noequal line here = novalue\""
        );
    }

    #[test]
    fn missing_name() {
        let err = parse("myhostname=a\n=b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/ironpost/main.cf, line 2: missing attribute name: \"=b\""
        );
    }

    #[test]
    fn last_definition_wins() {
        let cf = parse("a = 1\nb = 2\na = 3\n").unwrap();
        assert_eq!(cf.get("a").unwrap().value, "3");
        assert_eq!(cf.get("a").unwrap().line, 3);
        assert_eq!(cf.duplicates(), vec!["a"]);
    }
}
