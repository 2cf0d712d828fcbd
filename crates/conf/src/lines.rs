//! Logical lines, as Postfix reads main.cf and every table source file
//! (readllines(3)): a logical line starts with non-white-space text; a line
//! that starts with white space continues it; empty lines and lines whose
//! first non-white-space character is `#` are skipped and do not end a
//! logical line. A continuation is appended as it is, leading white space
//! included; only the newline goes (as readllines does: `a,\n    b` reads
//! `a,    b`).

/// One logical line with the physical line numbers it spans (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    pub text: String,
    pub first: usize,
    pub last: usize,
}

/// What the reader noticed but did not treat as fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineWarning {
    pub line: usize,
    pub text: String,
}

/// Splits `text` into logical lines. Continuation lines that have no logical
/// line to continue are reported as warnings and dropped, as Postfix does.
pub fn logical_lines(text: &str) -> (Vec<LogicalLine>, Vec<LineWarning>) {
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut warnings = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let continues = raw.starts_with(|c: char| c.is_ascii_whitespace());
        if continues {
            match current.as_mut() {
                Some(cur) => {
                    cur.text.push_str(raw);
                    cur.last = lineno;
                }
                None => warnings.push(LineWarning {
                    line: lineno,
                    text: format!("logical line must not start with whitespace: \"{raw}\""),
                }),
            }
            continue;
        }
        if let Some(done) = current.take() {
            out.push(finish(done));
        }
        current = Some(LogicalLine {
            text: raw.to_string(),
            first: lineno,
            last: lineno,
        });
    }
    if let Some(done) = current.take() {
        out.push(finish(done));
    }
    (out, warnings)
}

fn finish(mut line: LogicalLine) -> LogicalLine {
    let end = line.text.trim_end().len();
    line.text.truncate(end);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<(String, usize, usize)> {
        logical_lines(input)
            .0
            .into_iter()
            .map(|l| (l.text, l.first, l.last))
            .collect()
    }

    #[test]
    fn joins_continuations_across_blank_and_comment_lines() {
        let got = texts("a = x,\n\n  y\n  # note\n\tz\nb = 1\n");
        assert_eq!(
            got,
            vec![
                ("a = x,  y\tz".to_string(), 1, 5),
                ("b = 1".to_string(), 6, 6)
            ]
        );
    }

    #[test]
    fn orphan_continuation_is_a_warning() {
        let (lines, warnings) = logical_lines("  a = b\nc = d");
        assert_eq!(lines.len(), 1);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 1);
        assert!(warnings[0].text.contains("must not start with whitespace"));
    }

    #[test]
    fn crlf_and_trailing_space_are_trimmed() {
        assert_eq!(
            texts("a = b  \r\n  c  \r\n"),
            vec![("a = b    c".to_string(), 1, 2)]
        );
    }

    #[test]
    fn hash_inside_a_value_is_not_a_comment() {
        assert_eq!(texts("a = b # c"), vec![("a = b # c".to_string(), 1, 1)]);
    }
}
