//! # ironpost-conf: main.cf, `$name` expansion and the parameter table
//!
//! Postfix's configuration language, with no I/O except reading the file it
//! is given. The entry point is [`Config::load`].
//!
//! ## Layout
//! - [`lines`]: logical lines (continuations, comments), shared with every
//!   table source file.
//! - [`maincf`]: `name = value` entries with their line numbers.
//! - [`mastercf`]: master.cf services (listeners) and their `-o` overrides.
//! - [`expand`]: `$name`, `${name}`, `$(name)`, `${name?x}`, `${name:x}`,
//!   `${name?{a}:{b}}`, comparisons, `$$`; loops are errors.
//! - [`params`]: THE parameter table (name, type, default, description).
//! - [`value`]: typed values: booleans, integers, sizes, times, lists, CIDR.
//! - [`config`]: [`Config`], main.cf over the defaults, typed getters,
//!   checks and Postfix's warnings.
//! - [`edit`]: in-place edits for `postconf -e`, `-X` and `-#`.
//! - [`error`]: [`ConfError`], which names file, line and parameter.

pub mod config;
pub mod edit;
pub mod error;
pub mod expand;
pub mod lines;
pub mod maincf;
pub mod mastercf;
pub mod params;
pub mod value;

pub use config::{Config, HostFacts};
pub use error::{ConfError, ErrorKind, Location};
pub use maincf::MainCf;
pub use params::{PARAMS, Param};

/// The reason part of an I/O error, as strerror(3) words it: "No such file
/// or directory" rather than Rust's "... (os error 2)".
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
