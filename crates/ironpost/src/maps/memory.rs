//! Tables held in memory: `texthash:/path` (a postmap source file read
//! whole, no index needed) and `inline:{ key=value, { key = text } }`.

use std::collections::HashMap;

use ironpost_conf::value::{split_list, strip_braces};

use super::OpenError;
use super::source::{SourceOptions, parse_source};

#[derive(Debug, Default)]
pub struct MemoryTable {
    entries: HashMap<String, String>,
    /// Keys in source order, for listing.
    order: Vec<String>,
}

impl MemoryTable {
    /// Reads a postmap source file. Its warnings are logged.
    pub fn texthash(path: &str) -> Result<MemoryTable, OpenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OpenError::Io(format!("open {path}: {}", ironpost_conf::io_reason(&e))))?;
        let (entries, warnings) = parse_source(path, &text, SourceOptions::default());
        for w in warnings {
            tracing::warn!("{w}");
        }
        let mut table = MemoryTable::default();
        for e in entries {
            table.insert(e.key, e.value);
        }
        Ok(table)
    }

    /// Parses `{ key=value, { key = value with spaces } }`, the part after
    /// `inline:`. Keys are folded to lower case. Errors are Postfix's.
    pub fn inline(spec: &str, name: &str) -> Result<MemoryTable, OpenError> {
        let error = |what: &str| {
            OpenError::Invalid(format!(
                "{what}: \"{spec}\"; need \"inline:{{name=value...}}\""
            ))
        };
        let body = name.trim();
        if !(body.starts_with('{') && body.ends_with('}')) {
            return Err(error("bad syntax"));
        }
        let mut table = MemoryTable::default();
        for item in split_list(strip_braces(body)) {
            let element = strip_braces(&item);
            let Some((key, value)) = element.split_once('=') else {
                return Err(error("missing '=' after attribute name"));
            };
            let key = key.trim().to_lowercase();
            if key.is_empty() {
                return Err(error("missing attribute name"));
            }
            table.insert(key, value.trim().to_string());
        }
        if table.order.is_empty() {
            return Err(error("empty table"));
        }
        Ok(table)
    }

    fn insert(&mut self, key: String, value: String) {
        if !self.entries.contains_key(&key) {
            self.order.push(key.clone());
            self.entries.insert(key, value);
        }
    }

    /// Looks up a key already folded to lower case.
    pub fn lookup(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Every entry in source order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.order
            .iter()
            .map(|k| (k.as_str(), self.entries[k].as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_forms() {
        // As Postfix 3.7's `postmap -q KEY 'inline:{...}'` answers.
        let t = MemoryTable::inline(
            "inline:{...}",
            "{ A=1, {b = 2} , { c = three  words }, d=x=y }",
        )
        .unwrap();
        assert_eq!(t.lookup("a"), Some("1"));
        assert_eq!(t.lookup("b"), Some("2"));
        assert_eq!(t.lookup("c"), Some("three  words"));
        assert_eq!(t.lookup("d"), Some("x=y"));
        assert_eq!(t.lookup("e"), None);
    }

    #[test]
    fn inline_errors() {
        let err = |spec: &str| {
            MemoryTable::inline(spec, &spec["inline:".len()..])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("inline:a=b"),
            "bad syntax: \"inline:a=b\"; need \"inline:{name=value...}\""
        );
        assert_eq!(
            err("inline:{ a=1, b = 2 }"),
            "missing '=' after attribute name: \"inline:{ a=1, b = 2 }\"; need \"inline:{name=value...}\""
        );
        assert_eq!(
            err("inline:{ }"),
            "empty table: \"inline:{ }\"; need \"inline:{name=value...}\""
        );
        assert!(err("inline:{ =b }").starts_with("missing attribute name"));
    }

    #[test]
    fn texthash_reads_a_source_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("virtual");
        std::fs::write(
            &path,
            "Jerry@Example.com jerry\n# c\n@example.com catchall\n",
        )
        .unwrap();
        let t = MemoryTable::texthash(path.to_str().unwrap()).unwrap();
        assert_eq!(t.lookup("jerry@example.com"), Some("jerry"));
        assert_eq!(t.entries().count(), 2);
        let missing = MemoryTable::texthash("/nonexistent/x").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "open /nonexistent/x: No such file or directory"
        );
    }
}
