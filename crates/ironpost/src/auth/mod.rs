//! Authentication: stored passwords now; the user directory, system
//! accounts and the SASL server come with them.
//!
//! ## Layout
//! - [`password`]: password schemes in Dovecot's notation and crypt(3)
//!   strings; new passwords as `{ARGON2ID}`.

pub mod password;
