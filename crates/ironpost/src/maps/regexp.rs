//! `regexp:` and `pcre:` tables (regexp_table(5), pcre_table(5)).
//! Placeholder: being written.

use super::TableError;

/// Which table syntax: POSIX extended (`regexp:`) or Perl-like (`pcre:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Posix,
    Pcre,
}

#[derive(Debug)]
pub struct RegexpTable {}

impl RegexpTable {
    pub fn parse(file: &str, text: &str, flavor: Flavor) -> Result<RegexpTable, TableError> {
        let _ = (file, text, flavor);
        Ok(RegexpTable {})
    }

    pub fn lookup(&self, key: &str) -> Option<String> {
        let _ = key;
        None
    }
}
