//! Configuration errors. Every error says where the fault is: the file, the
//! line when there is one, and the parameter when one is involved.

use std::fmt;
use std::path::PathBuf;

/// Where in a configuration file something was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based physical line number of the start of the logical line.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}, line {}", self.file.display(), line),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// A configuration error, printed as one line in Postfix's style:
/// `/etc/ironpost/main.cf, line 3: missing '=' after attribute name: "foo"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    /// Where the fault is; `None` for faults in built-in defaults or on the
    /// command line.
    pub location: Option<Location>,
    /// The parameter whose value is at fault, if any.
    pub param: Option<String>,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io(String),
    /// A logical line without `=`.
    MissingEquals(String),
    /// A logical line that starts with `=`.
    MissingName(String),
    /// `$name` expansion found a reference loop; the chain of names.
    Recursion(Vec<String>),
    /// A `$` construct that cannot be parsed.
    MacroSyntax(String),
    /// Any other syntax error; the message says what is wrong.
    Syntax(String),
    /// A value that does not have the parameter's type.
    BadValue { value: String, expected: String },
}

impl ConfError {
    pub fn new(kind: ErrorKind) -> Self {
        ConfError {
            location: None,
            param: None,
            kind,
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn for_param(mut self, name: &str) -> Self {
        self.param = Some(name.to_string());
        self
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        match &self.kind {
            ErrorKind::Io(msg) => write!(f, "{msg}"),
            ErrorKind::MissingEquals(line) => {
                write!(f, "missing '=' after attribute name: \"{line}\"")
            }
            ErrorKind::MissingName(line) => write!(f, "missing attribute name: \"{line}\""),
            ErrorKind::Recursion(chain) => {
                let name = self.param.as_deref().unwrap_or_else(|| &chain[0]);
                let path: Vec<String> = chain.iter().map(|n| format!("${n}")).collect();
                write!(
                    f,
                    "parameter {name}: recursive expansion: {}",
                    path.join(" -> ")
                )
            }
            ErrorKind::Syntax(msg) => write!(f, "{msg}"),
            ErrorKind::MacroSyntax(msg) => match &self.param {
                Some(p) => write!(f, "parameter {p}: {msg}"),
                None => write!(f, "{msg}"),
            },
            ErrorKind::BadValue { value, expected } => match &self.param {
                Some(p) => write!(f, "bad value for {p}: \"{value}\": expected {expected}"),
                None => write!(f, "bad value \"{value}\": expected {expected}"),
            },
        }
    }
}

impl std::error::Error for ConfError {}
