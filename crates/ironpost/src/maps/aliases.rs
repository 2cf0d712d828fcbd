//! The aliases(5) source format and alias values. Placeholder: being written.
