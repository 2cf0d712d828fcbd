//! Pattern tables compared against Postfix's own postmap. Placeholder.
