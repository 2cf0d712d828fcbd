//! SMTP (RFC 5321) without I/O: command lines, commands and their
//! parameters, envelope addresses, replies, and the DATA stream.
//!
//! ## Layout
//! - [`line`]: cutting the input into command lines (length limit).
//! - [`command`]: commands and ESMTP parameters, with Postfix's replies for
//!   syntax errors.
//! - [`address`]: envelope addresses (paths).
//! - [`xtext`]: RFC 3461 xtext.
//! - [`data`]: DATA decoding (dot-unstuffing, end of data, bare LF policy)
//!   and dot-stuffing.
//! - [`reply`]: replies and their wire form.

pub mod address;
pub mod command;
pub mod data;
pub mod line;
pub mod reply;
pub mod xtext;
