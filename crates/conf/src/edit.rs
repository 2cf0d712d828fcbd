//! In-place edits of main.cf for `postconf -e`, `-X` and `-#`, done the way
//! Postfix's postconf does them: line by line, so that comments, blank lines,
//! the order of definitions and the other parameters' continuation lines stay
//! exactly as they were.

use crate::maincf::split_nameval;

/// What to do to main.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// `-e name=value ...`: replace each definition of a name (every one, if
    /// there are several) with `name = value`; append names not present.
    Set(Vec<(String, String)>),
    /// `-X name ...`: remove the definitions and their continuation lines.
    Remove(Vec<String>),
    /// `-# name ...`: comment out the definitions and their continuation lines.
    CommentOut(Vec<String>),
}

/// The result of an edit: the new text and what postconf warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// Names that had more than one definition.
    pub multiple: Vec<String>,
}

/// Applies `edit` to main.cf `text`.
pub fn edit_main_cf(text: &str, edit: &Edit) -> Edited {
    // For -e, a name given twice on the command line takes its last value.
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let names: Vec<&str> = match edit {
        Edit::Set(given) => {
            for (n, v) in given {
                match pairs.iter_mut().find(|(m, _)| m == n) {
                    Some(p) => p.1 = v,
                    None => pairs.push((n, v)),
                }
            }
            pairs.iter().map(|(n, _)| *n).collect()
        }
        Edit::Remove(names) | Edit::CommentOut(names) => names.iter().map(String::as_str).collect(),
    };
    let mut out = String::with_capacity(text.len() + 64);
    let mut found: Vec<usize> = vec![0; names.len()];
    // Whether the continuation lines that follow belong to an edited name.
    let mut interesting = false;

    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let trimmed = body.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
            continue;
        }
        if trimmed.len() != body.len() {
            // A continuation line: kept, dropped or commented out with its
            // definition.
            if !interesting {
                out.push_str(line);
            } else if let Edit::CommentOut(_) = edit {
                out.push('#');
                out.push_str(line);
            }
            continue;
        }
        let index = split_nameval(body)
            .ok()
            .and_then(|(n, _)| names.iter().position(|w| *w == n));
        interesting = index.is_some();
        let Some(i) = index else {
            out.push_str(line);
            continue;
        };
        found[i] += 1;
        match edit {
            Edit::Set(_) => push_definition(&mut out, pairs[i].0, pairs[i].1),
            Edit::Remove(_) => {}
            Edit::CommentOut(_) => {
                out.push('#');
                out.push_str(line);
            }
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (i, (n, v)) in pairs.iter().enumerate() {
        if found[i] == 0 {
            push_definition(&mut out, n, v);
        }
    }
    let multiple = names
        .iter()
        .zip(&found)
        .filter(|(_, n)| **n > 1)
        .map(|(name, _)| name.to_string())
        .collect();
    Edited {
        text: out,
        multiple,
    }
}

fn push_definition(out: &mut String, name: &str, value: &str) {
    // A value must stay on one logical line: newlines become spaces.
    let value: String = value
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    out.push_str(name);
    out.push_str(" = ");
    out.push_str(value.trim());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORIG: &str = "# top comment\nmyhostname = a\nmydestination = x,\n    y\n# mid\nmydomain = d\n\nrelayhost = r\n";

    fn set(pairs: &[(&str, &str)]) -> Edit {
        Edit::Set(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn set_replaces_in_place_and_appends() {
        let e = edit_main_cf(
            ORIG,
            &set(&[
                ("mydestination", "p, q"),
                ("newparam", "1"),
                ("myorigin", "$mydomain"),
                ("mydomain", "e"),
            ]),
        );
        assert_eq!(
            e.text,
            "# top comment\nmyhostname = a\nmydestination = p, q\n# mid\nmydomain = e\n\nrelayhost = r\nnewparam = 1\nmyorigin = $mydomain\n"
        );
        assert!(e.multiple.is_empty());
    }

    #[test]
    fn remove_drops_continuation_lines() {
        let e = edit_main_cf(
            ORIG,
            &Edit::Remove(vec![
                "mydestination".into(),
                "relayhost".into(),
                "nothere".into(),
            ]),
        );
        assert_eq!(
            e.text,
            "# top comment\nmyhostname = a\n# mid\nmydomain = d\n\n"
        );
    }

    #[test]
    fn comment_out_marks_continuation_lines() {
        let e = edit_main_cf(
            ORIG,
            &Edit::CommentOut(vec!["mydestination".into(), "mydomain".into()]),
        );
        assert_eq!(
            e.text,
            "# top comment\nmyhostname = a\n#mydestination = x,\n#    y\n# mid\n#mydomain = d\n\nrelayhost = r\n"
        );
    }

    #[test]
    fn every_duplicate_is_replaced_and_reported() {
        let e = edit_main_cf(
            "myhostname = a\nmydomain = d\nmyhostname = b\n    c\n",
            &set(&[("myhostname", "z")]),
        );
        assert_eq!(e.text, "myhostname = z\nmydomain = d\nmyhostname = z\n");
        assert_eq!(e.multiple, vec!["myhostname"]);
    }

    #[test]
    fn missing_final_newline_and_empty_file() {
        let e = edit_main_cf("a = 1", &set(&[("b", "2")]));
        assert_eq!(e.text, "a = 1\nb = 2\n");
        let e = edit_main_cf("", &set(&[("b", "2")]));
        assert_eq!(e.text, "b = 2\n");
    }

    #[test]
    fn comment_between_definition_and_continuation_is_kept() {
        let e = edit_main_cf("a = x\n# c\n  y\nb = 1\n", &Edit::Remove(vec!["a".into()]));
        assert_eq!(e.text, "# c\nb = 1\n");
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-d] ?= ?[a-z0-9 ,$]{0,12}".prop_map(|s| s),
            "[ \t]+[a-z0-9,]{1,8}".prop_map(|s| s),
            "#[ a-z]{0,8}".prop_map(|s| s),
            Just(String::new()),
        ]
    }

    proptest! {
        /// An edit never changes a line that does not belong to an edited
        /// parameter, and the edited parameters end up with the new value.
        #[test]
        fn set_keeps_other_lines(lines in prop::collection::vec(line(), 0..25), value in "[a-z0-9]{0,6}") {
            let text = lines.join("\n") + "\n";
            let e = edit_main_cf(&text, &set(&[("b", &value)]));
            // Other parameters keep their values and lines.
            let before = crate::maincf::MainCf::parse(std::path::Path::new("main.cf"), &text);
            let after = crate::maincf::MainCf::parse(std::path::Path::new("main.cf"), &e.text);
            if let (Ok(before), Ok(after)) = (before, after) {
                let others = |cf: &crate::maincf::MainCf| -> Vec<(String, String)> {
                    cf.entries.iter().filter(|x| x.name != "b").map(|x| (x.name.clone(), x.value.clone())).collect()
                };
                prop_assert_eq!(others(&before), others(&after));
                prop_assert_eq!(after.get("b").map(|x| x.value.clone()), Some(value.clone()));
            }
            // Every comment and blank line survives, in order.
            let keep = |t: &str| -> Vec<String> {
                t.lines().filter(|l| l.trim().is_empty() || l.trim_start().starts_with('#')).map(str::to_string).collect()
            };
            prop_assert_eq!(keep(&text), keep(&e.text));
        }

        #[test]
        fn remove_then_nothing_left(lines in prop::collection::vec(line(), 0..25)) {
            let text = lines.join("\n") + "\n";
            let e = edit_main_cf(&text, &Edit::Remove(vec!["a".into()]));
            if let Ok(after) = crate::maincf::MainCf::parse(std::path::Path::new("main.cf"), &e.text) {
                prop_assert!(after.get("a").is_none());
            }
        }
    }
}
