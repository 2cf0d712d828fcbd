//! SORT and THREAD evaluated (RFC 5256, DISPLAYFROM/DISPLAYTO from RFC
//! 5957), without I/O: the session gives an [`Item`] per message found
//! by the search, and writes what comes back with
//! [`super::response`]'s sort and thread writers.
//!
//! - [`sort`]: the indices of the items in the order of the criteria,
//!   ties broken by sequence number.
//! - [`thread`]: ORDEREDSUBJECT and REFERENCES (RFC 5256 §3), and REFS
//!   (Dovecot's: REFERENCES without the grouping by subject, threads in
//!   the order of their latest message).
//! - [`base_subject`]: the base subject of RFC 5256 §2.1.
//!
//! Strings are compared after Unicode lower-casing (a simplification of
//! i;unicode-casemap, RFC 5051). The sent date (RFC 5256 §2.2) is the
//! Date: field in UTC, or the INTERNALDATE when there is none that
//! parses.
//!
//! Adversarial headers are safe: References with cycles, self references
//! or duplicate Message-IDs never make a loop (a link that would is not
//! made), only the last [`MAX_REFERENCES`] ids of a References field
//! count, and every walk over the trees is iterative.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::eval::{address_list, decode_header, fold, last_field, parse_date};
use super::response::ThreadNode;
use super::search::{SortCriterion, SortKey, ThreadAlgorithm};
use crate::mime::Address;
use crate::mime::header::unfold;

/// One message for SORT/THREAD.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub seq: u32,
    pub uid: u32,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// The header part of the message (through the blank line).
    pub header: &'a [u8],
}

/// How many ids of a References field count (its last ones, the nearest
/// ancestors).
pub const MAX_REFERENCES: usize = 256;

/// A sort key's value for one message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Int(i64),
    Text(String),
}

/// RFC 5256 SORT: the indices into `items`, sorted (ties by sequence
/// number).
pub fn sort(criteria: &[SortCriterion], items: &[Item<'_>]) -> Vec<usize> {
    let keys: Vec<Vec<Value>> = items
        .iter()
        .map(|it| criteria.iter().map(|c| sort_value(c.key, it)).collect())
        .collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        for (i, c) in criteria.iter().enumerate() {
            let o = keys[a][i].cmp(&keys[b][i]);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        items[a].seq.cmp(&items[b].seq)
    });
    order
}

fn sort_value(key: SortKey, it: &Item<'_>) -> Value {
    match key {
        SortKey::Arrival => Value::Int(it.internal_date),
        SortKey::Date => Value::Int(sent_date(it)),
        SortKey::Size => Value::Int(i64::try_from(it.size).unwrap_or(i64::MAX)),
        SortKey::Subject => Value::Text(base_subject(subject_of(it))),
        SortKey::From => Value::Text(first_mailbox(it.header, b"from")),
        SortKey::To => Value::Text(first_mailbox(it.header, b"to")),
        SortKey::Cc => Value::Text(first_mailbox(it.header, b"cc")),
        SortKey::DisplayFrom => Value::Text(display(it.header, b"from")),
        SortKey::DisplayTo => Value::Text(display(it.header, b"to")),
    }
}

/// The first address of a list (group names and ends skipped).
fn first_address(header: &[u8], name: &[u8]) -> Option<Address> {
    address_list(header, name)
        .into_iter()
        .find(|a| a.mailbox.is_some() && a.host.is_some())
}

/// RFC 5256 §3 FROM, TO, CC: the addr-mailbox of the first address.
fn first_mailbox(header: &[u8], name: &[u8]) -> String {
    first_address(header, name)
        .and_then(|a| a.mailbox)
        .map(|m| fold(&decode_header(&m)))
        .unwrap_or_default()
}

/// RFC 5957 §3 DISPLAYFROM, DISPLAYTO: the decoded display name of the
/// first address, or its addr-spec when it has none.
fn display(header: &[u8], name: &[u8]) -> String {
    let Some(a) = first_address(header, name) else {
        return String::new();
    };
    if let Some(n) = &a.name {
        let n = decode_header(n);
        if !n.trim().is_empty() {
            return fold(n.trim());
        }
    }
    let mailbox = decode_header(a.mailbox.as_deref().unwrap_or(b""));
    let host = decode_header(a.host.as_deref().unwrap_or(b""));
    fold(&format!("{mailbox}@{host}"))
}

/// The sent date (RFC 5256 §2.2) in seconds since the epoch.
fn sent_date(it: &Item<'_>) -> i64 {
    last_field(it.header, b"date")
        .and_then(parse_date)
        .map_or(it.internal_date, |d| d.timestamp())
}

fn subject_of<'a>(it: &Item<'a>) -> &'a [u8] {
    last_field(it.header, b"subject").unwrap_or(b"")
}

/// RFC 5256 §2.1 base subject of a Subject field value as stored (folded,
/// encoded words and all): decoded, white space runs made one space,
/// `re:`/`fwd:` leaders, `[blob]`s, `(fwd)` trailers and `[fwd: ...]`
/// wrappers removed, and lower-cased, which is what SORT and THREAD
/// compare (standing in for i;unicode-casemap).
pub fn base_subject(raw_subject: &[u8]) -> String {
    base_subject_reply(raw_subject).0
}

/// The base subject, and whether the subject is a reply or a forward
/// (RFC 5256 §2.1: a `re:`/`fwd:` leader, a `(fwd)` trailer or a
/// `[fwd: ...]` wrapper was removed).
pub fn base_subject_reply(raw_subject: &[u8]) -> (String, bool) {
    // (1) decoded, white space runs as one space
    let decoded = fold(&decode_header(raw_subject));
    let mut s = String::with_capacity(decoded.len());
    let mut space = false;
    for c in decoded.chars() {
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            if !space {
                s.push(' ');
            }
            space = true;
        } else {
            s.push(c);
            space = false;
        }
    }
    let mut reply = false;
    let mut s = s.as_str();
    loop {
        // (2) trailers: "(fwd)" and white space
        loop {
            if let Some(t) = s.strip_suffix("(fwd)") {
                s = t;
                reply = true;
            } else if let Some(t) = s.strip_suffix(' ') {
                s = t;
            } else {
                break;
            }
        }
        // (5) repeat (3) and (4) until nothing changes
        loop {
            let before = s.len();
            // (3) leaders: white space, or blobs then re/fw/fwd [blob] ":"
            loop {
                if let Some(t) = s.strip_prefix(' ') {
                    s = t;
                } else if let Some(t) = refwd_leader(s) {
                    s = t;
                    reply = true;
                } else {
                    break;
                }
            }
            // (4) a blob, when what remains is not empty
            if let Some(t) = blob(s)
                && !t.is_empty()
            {
                s = t;
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd:" ... "]": unwrap and start again
        if let Some(inner) = s.strip_prefix("[fwd:").and_then(|t| t.strip_suffix(']')) {
            s = inner;
            reply = true;
            continue;
        }
        break;
    }
    (s.to_owned(), reply)
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: what follows it.
fn blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(['[', ']'])?;
    let rest = rest[end..].strip_prefix(']')?;
    Some(rest.trim_start_matches(' '))
}

/// `*subj-blob subj-refwd`, `subj-refwd = ("re" / ("fw" ["d"])) *WSP
/// [subj-blob] ":"`: what follows it.
fn refwd_leader(s: &str) -> Option<&str> {
    let mut t = s;
    while let Some(r) = blob(t) {
        t = r;
    }
    let t = if let Some(r) = t.strip_prefix("re") {
        r
    } else if let Some(r) = t.strip_prefix("fwd") {
        r
    } else {
        t.strip_prefix("fw")?
    };
    let t = t.trim_start_matches(' ');
    let t = blob(t).unwrap_or(t);
    t.strip_prefix(':')
}

/// RFC 5256 THREAD ORDEREDSUBJECT / REFERENCES (REFS as Dovecot's REFS:
/// REFERENCES without grouping by subject, threads ordered by their
/// latest message). `uid` says whether nodes carry UIDs or sequence
/// numbers. Other(_) algorithms are refused by the session before
/// calling this; they get no threads.
pub fn thread(algorithm: &ThreadAlgorithm, items: &[Item<'_>], uid: bool) -> Vec<ThreadNode> {
    let msgs: Vec<Msg> = items
        .iter()
        .map(|it| {
            let (subject, reply) = base_subject_reply(subject_of(it));
            Msg {
                id: if uid { it.uid } else { it.seq },
                seq: it.seq,
                date: sent_date(it),
                subject,
                reply,
            }
        })
        .collect();
    match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(&msgs),
        ThreadAlgorithm::References => references(&msgs, items, true),
        ThreadAlgorithm::Refs => references(&msgs, items, false),
        ThreadAlgorithm::Other(_) => Vec::new(),
    }
}

/// What threading needs of a message.
struct Msg {
    /// The number that goes on the wire.
    id: u32,
    seq: u32,
    date: i64,
    subject: String,
    reply: bool,
}

fn leaf(id: u32) -> ThreadNode {
    ThreadNode {
        id: Some(id),
        children: Vec::new(),
    }
}

/// RFC 5256 §3 ORDEREDSUBJECT: sorted by base subject, then sent date;
/// each run of one subject is a thread whose first message is the parent
/// of the others; threads in the order of their first message's date.
fn ordered_subject(msgs: &[Msg]) -> Vec<ThreadNode> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&msgs[a], &msgs[b]);
        x.subject
            .cmp(&y.subject)
            .then(x.date.cmp(&y.date))
            .then(x.seq.cmp(&y.seq))
    });
    let mut threads: Vec<(usize, ThreadNode)> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let first = order[i];
        let mut j = i + 1;
        let mut node = leaf(msgs[first].id);
        while j < order.len() && msgs[order[j]].subject == msgs[first].subject {
            node.children.push(leaf(msgs[order[j]].id));
            j += 1;
        }
        threads.push((first, node));
        i = j;
    }
    threads.sort_by(|(a, _), (b, _)| {
        msgs[*a]
            .date
            .cmp(&msgs[*b].date)
            .then(msgs[*a].seq.cmp(&msgs[*b].seq))
    });
    threads.into_iter().map(|(_, n)| n).collect()
}

/// A container of RFC 5256 §3 REFERENCES: a message, or a dummy.
#[derive(Debug, Default)]
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Forest {
    c: Vec<Container>,
}

impl Forest {
    fn new_container(&mut self, msg: Option<usize>) -> usize {
        self.c.push(Container {
            msg,
            ..Container::default()
        });
        self.c.len() - 1
    }

    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        // the forest has no cycles; the bound only guards against a bug
        let mut steps = 0;
        while let Some(x) = cur {
            if x == a {
                return true;
            }
            steps += 1;
            if steps > self.c.len() {
                return true;
            }
            cur = self.c[x].parent;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.c[child].parent.take() {
            self.c[p].children.retain(|&x| x != child);
        }
    }

    /// Makes `child` (which has no parent) a child of `parent`, unless that
    /// would make a loop.
    fn link(&mut self, parent: usize, child: usize) -> bool {
        // a container without children is nobody's ancestor but its own:
        // the common case needs no walk up
        let loops = if self.c[child].children.is_empty() {
            child == parent
        } else {
            self.is_ancestor(child, parent)
        };
        if self.c[child].parent.is_some() || loops {
            return false;
        }
        self.c[child].parent = Some(parent);
        self.c[parent].children.push(child);
        true
    }

    /// The containers under `root` (included), parents before children.
    fn preorder(&self, root: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(x) = stack.pop() {
            out.push(x);
            stack.extend(self.c[x].children.iter().rev());
        }
        out
    }
}

/// The ids in angle brackets of a field value (white space inside
/// removed, empty ones skipped).
fn msg_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let s = unfold(value);
    let mut out = Vec::new();
    let mut rest = s.as_slice();
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.iter().position(|&b| b == b'>') else {
            break;
        };
        let id: Vec<u8> = rest[..close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if !id.is_empty() && !id.contains(&b'<') {
            out.push(id);
        }
        rest = &rest[close + 1..];
    }
    out
}

/// RFC 5256 §3 REFERENCES, steps 1 to 6; `by_subject` false is REFS.
fn references(msgs: &[Msg], items: &[Item<'_>], by_subject: bool) -> Vec<ThreadNode> {
    let mut f = Forest { c: Vec::new() };
    let mut ids: HashMap<Vec<u8>, usize> = HashMap::new();
    // (1)
    for (i, it) in items.iter().enumerate() {
        // a message without a Message-ID, or with one seen before, is
        // unique
        let own = last_field(it.header, b"message-id")
            .map(msg_ids)
            .and_then(|v| v.into_iter().next());
        let cur = match own {
            Some(id) => match ids.get(&id) {
                Some(&c) if f.c[c].msg.is_none() => {
                    f.c[c].msg = Some(i);
                    c
                }
                Some(_) => f.new_container(Some(i)),
                None => {
                    let c = f.new_container(Some(i));
                    ids.insert(id, c);
                    c
                }
            },
            None => f.new_container(Some(i)),
        };
        let mut refs = last_field(it.header, b"references")
            .map(msg_ids)
            .unwrap_or_default();
        if refs.is_empty() {
            refs = last_field(it.header, b"in-reply-to")
                .map(msg_ids)
                .unwrap_or_default();
            refs.truncate(1);
        }
        let skip = refs.len().saturating_sub(MAX_REFERENCES);
        // (1A) each reference the child of the one before, unless it has a
        // parent already or that would make a loop
        let mut prev: Option<usize> = None;
        for r in refs.into_iter().skip(skip) {
            let rc = match ids.get(&r) {
                Some(&c) => c,
                None => {
                    let c = f.new_container(None);
                    ids.insert(r, c);
                    c
                }
            };
            if let Some(p) = prev
                && p != rc
            {
                f.link(p, rc);
            }
            prev = Some(rc);
        }
        // (1B) the last reference is the parent: the message's own
        // references win over an earlier guess
        f.unlink(cur);
        if let Some(p) = prev
            && p != cur
        {
            f.link(p, cur);
        }
    }
    // (2) the root set, under a root container; (3) the id table goes
    drop(ids);
    let root = f.new_container(None);
    for x in 0..root {
        if f.c[x].parent.is_none() {
            f.c[x].parent = Some(root);
            f.c[root].children.push(x);
        }
    }
    // (4) prune dummies, children first
    for &x in f.preorder(root).iter().rev() {
        let children = std::mem::take(&mut f.c[x].children);
        let mut kept = Vec::with_capacity(children.len());
        for ch in children {
            if f.c[ch].msg.is_some() {
                kept.push(ch);
                continue;
            }
            let grand = std::mem::take(&mut f.c[ch].children);
            if grand.is_empty() {
                continue;
            }
            // promoted, except to the root level when there are several
            if x != root || grand.len() == 1 {
                for &g in &grand {
                    f.c[g].parent = Some(x);
                }
                kept.extend(grand);
            } else {
                f.c[ch].children = grand;
                kept.push(ch);
            }
        }
        f.c[x].children = kept;
    }
    if by_subject {
        sort_children(&mut f, msgs, root);
        group_by_subject(&mut f, msgs, root);
    }
    // (6) siblings by sent date
    sort_children(&mut f, msgs, root);
    if !by_subject {
        // REFS: threads in the order of their latest message
        let mut latest: Vec<(i64, u32)> = vec![(i64::MIN, 0); f.c.len()];
        for &x in f.preorder(root).iter().rev() {
            let mut best = f.c[x]
                .msg
                .map_or((i64::MIN, 0), |m| (msgs[m].date, msgs[m].seq));
            for &ch in &f.c[x].children {
                best = best.max(latest[ch]);
            }
            latest[x] = best;
        }
        f.c[root].children.sort_by_key(|&x| latest[x]);
    }
    build(&f, msgs, root)
}

/// The date and sequence number a container sorts by: its message's, or
/// a dummy's first child's.
fn sort_children(f: &mut Forest, msgs: &[Msg], root: usize) {
    let mut key: Vec<(i64, u32)> = vec![(i64::MAX, u32::MAX); f.c.len()];
    for &x in f.preorder(root).iter().rev() {
        let mut children = std::mem::take(&mut f.c[x].children);
        children.sort_by_key(|&ch| key[ch]);
        key[x] = match f.c[x].msg {
            Some(m) => (msgs[m].date, msgs[m].seq),
            None => children.first().map_or((i64::MAX, u32::MAX), |&c| key[c]),
        };
        f.c[x].children = children;
    }
}

/// (5) Root-level threads with one base subject put together.
fn group_by_subject(f: &mut Forest, msgs: &[Msg], root: usize) {
    let roots = f.c[root].children.clone();
    // the subject of a dummy is its first child's
    let subject = |f: &Forest, x: usize| -> Option<usize> {
        f.c[x]
            .msg
            .or_else(|| f.c[x].children.first().and_then(|&c| f.c[c].msg))
    };
    let subjects: Vec<Option<usize>> = roots.iter().map(|&x| subject(f, x)).collect();
    // (5A, 5B) the subject table
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (k, &x) in roots.iter().enumerate() {
        let Some(m) = subjects[k] else { continue };
        let subj = msgs[m].subject.as_str();
        if subj.is_empty() {
            continue;
        }
        match table.get(subj) {
            None => {
                table.insert(subj, x);
            }
            Some(&t) => {
                let this_dummy = f.c[x].msg.is_none();
                let t_msg = f.c[t].msg;
                let replace = (this_dummy && t_msg.is_some())
                    || (t_msg.is_some_and(|tm| msgs[tm].reply)
                        && f.c[x].msg.is_some_and(|xm| !msgs[xm].reply));
                if replace {
                    table.insert(subj, x);
                }
            }
        }
    }
    // (5C) merge each other root into the one in the table
    let mut new_roots = Vec::with_capacity(roots.len());
    for (k, &x) in roots.iter().enumerate() {
        let Some(m) = subjects[k] else {
            new_roots.push(x);
            continue;
        };
        let subj = msgs[m].subject.as_str();
        let t = match table.get(subj) {
            Some(&t) if !subj.is_empty() && t != x => t,
            _ => {
                new_roots.push(x);
                continue;
            }
        };
        let (t_msg, x_msg) = (f.c[t].msg, f.c[x].msg);
        match (t_msg, x_msg) {
            (None, None) => {
                // both dummies: the children become siblings
                let children = std::mem::take(&mut f.c[x].children);
                for &c in &children {
                    f.c[c].parent = Some(t);
                }
                f.c[t].children.extend(children);
            }
            (None, Some(_)) => {
                f.c[x].parent = Some(t);
                f.c[t].children.push(x);
            }
            (Some(tm), Some(xm)) if msgs[xm].reply && !msgs[tm].reply => {
                f.c[x].parent = Some(t);
                f.c[t].children.push(x);
            }
            _ => {
                // a new dummy over both, in the table's place: the table's
                // container becomes the dummy, its message moves to a new one
                let moved = f.new_container(t_msg);
                let children = std::mem::take(&mut f.c[t].children);
                for &c in &children {
                    f.c[c].parent = Some(moved);
                }
                f.c[moved].children = children;
                f.c[moved].parent = Some(t);
                f.c[t].msg = None;
                f.c[x].parent = Some(t);
                f.c[t].children = vec![moved, x];
            }
        }
    }
    f.c[root].children = new_roots;
}

/// The thread nodes under `root`, built children first (no recursion).
fn build(f: &Forest, msgs: &[Msg], root: usize) -> Vec<ThreadNode> {
    let mut built: Vec<Option<ThreadNode>> = Vec::new();
    built.resize_with(f.c.len(), || None);
    for &x in f.preorder(root).iter().rev() {
        let children = f.c[x]
            .children
            .iter()
            .filter_map(|&c| built[c].take())
            .collect();
        built[x] = Some(ThreadNode {
            id: f.c[x].msg.map(|m| msgs[m].id),
            children,
        });
    }
    built[root].take().map(|n| n.children).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response;
    use proptest::prelude::*;

    /// Headers and the items over them: seq i+1, uid 10*(i+1).
    fn items(headers: &[String]) -> Vec<Item<'_>> {
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| Item {
                seq: i as u32 + 1,
                uid: 10 * (i as u32 + 1),
                internal_date: 1000 + i as i64,
                size: 0,
                header: h.as_bytes(),
            })
            .collect()
    }

    fn wire(roots: &[ThreadNode]) -> String {
        let mut out = Vec::new();
        response::thread(&mut out, roots);
        String::from_utf8(out).unwrap()
    }

    /// A header with a Date on day `day` of March 2022.
    fn msg(id: Option<&str>, refs: &str, subject: &str, day: u32) -> String {
        let mut h = String::new();
        if let Some(id) = id {
            h.push_str(&format!("Message-ID: <{id}@example.com>\r\n"));
        }
        if !refs.is_empty() {
            h.push_str(&format!("References: {refs}\r\n"));
        }
        h.push_str(&format!(
            "Subject: {subject}\r\nDate: {day} Mar 2022 12:00:00 +0000\r\n\r\n"
        ));
        h
    }

    fn count(roots: &[ThreadNode]) -> (usize, Vec<u32>) {
        let mut ids = Vec::new();
        let mut nodes = 0;
        let mut stack: Vec<&ThreadNode> = roots.iter().collect();
        while let Some(n) = stack.pop() {
            nodes += 1;
            ids.extend(n.id);
            stack.extend(n.children.iter());
        }
        ids.sort_unstable();
        (nodes, ids)
    }

    #[test]
    fn base_subjects() {
        let b = |s: &str| base_subject_reply(s.as_bytes());
        assert_eq!(b("Re: [list] Fwd: Hello (fwd)"), ("hello".into(), true));
        assert_eq!(b("[fwd: Re: hello]"), ("hello".into(), true));
        assert_eq!(b("[Fwd: [Fwd: hi]] (fwd) "), ("hi".into(), true));
        assert_eq!(b("[PATCH] fix it"), ("fix it".into(), false));
        assert_eq!(b("[PATCH]  [v2] fix"), ("fix".into(), false));
        assert_eq!(b("[only]"), ("[only]".into(), false));
        assert_eq!(b("Re:   Hello \t  World  "), ("hello world".into(), true));
        assert_eq!(b("RE: Re: re[2]: hi"), ("hi".into(), true));
        assert_eq!(b("Fw: x"), ("x".into(), true));
        assert_eq!(b("FWD:x"), ("x".into(), true));
        assert_eq!(b("Reply"), ("reply".into(), false));
        assert_eq!(b("Re:"), ("".into(), true));
        assert_eq!(b(""), ("".into(), false));
        assert_eq!(
            b("Re: =?utf-8?q?R=C3=89sum=C3=A9?="),
            ("résumé".into(), true)
        );
        assert_eq!(b("Hello\r\n world"), ("hello world".into(), false));
        assert_eq!(base_subject("Re: Café".as_bytes()), "café");
    }

    #[test]
    fn sorting() {
        let headers: Vec<String> = [
            "From: Zed <alpha@x>\r\nSubject: Re: beta\r\nDate: Tue, 1 Mar 2022 10:00:00 +0000\r\n\r\n",
            "From: =?utf-8?q?=C3=89mile?= <zulu@x>\r\nSubject: alpha\r\nDate: 1 Mar 2022 09:00:00 -0200\r\nTo: B <b@x>\r\n\r\n",
            "From: bravo@x\r\nSubject: Beta\r\nTo: a@x\r\n\r\n",
            "Subject: [x] Alpha\r\nDate: 1 Mar 2022 10:00:00 +0000\r\nCc: Z <c@x>\r\n\r\n",
        ]
        .map(String::from)
        .to_vec();
        let mut its = items(&headers);
        for (it, (size, arrival)) in
            its.iter_mut()
                .zip([(300, 500), (100, 400), (300, 100), (200, 300)])
        {
            it.size = size;
            it.internal_date = arrival;
        }
        let c = |reverse, key| SortCriterion { reverse, key };
        let run = |criteria: &[SortCriterion]| -> Vec<u32> {
            sort(criteria, &its)
                .into_iter()
                .map(|i| its[i].seq)
                .collect()
        };
        assert_eq!(run(&[c(false, SortKey::From)]), [4, 1, 3, 2]);
        assert_eq!(run(&[c(true, SortKey::From)]), [2, 3, 1, 4]);
        assert_eq!(run(&[c(false, SortKey::DisplayFrom)]), [4, 3, 1, 2]);
        assert_eq!(run(&[c(false, SortKey::Date)]), [3, 1, 4, 2]);
        assert_eq!(run(&[c(true, SortKey::Size)]), [1, 3, 4, 2]);
        assert_eq!(run(&[c(false, SortKey::Size)]), [2, 4, 1, 3]);
        assert_eq!(
            run(&[c(false, SortKey::Subject), c(true, SortKey::Date)]),
            [2, 4, 1, 3]
        );
        assert_eq!(run(&[c(false, SortKey::Arrival)]), [3, 4, 2, 1]);
        assert_eq!(run(&[c(false, SortKey::To)]), [1, 4, 3, 2]);
        assert_eq!(run(&[c(false, SortKey::DisplayTo)]), [1, 4, 3, 2]);
        assert_eq!(run(&[c(false, SortKey::Cc)]), [1, 2, 3, 4]);
        assert_eq!(run(&[c(true, SortKey::Cc)]), [4, 1, 2, 3]);
        assert_eq!(run(&[]), [1, 2, 3, 4]);
        assert!(sort(&[c(false, SortKey::Date)], &[]).is_empty());
    }

    #[test]
    fn ordered_subject() {
        let headers = vec![
            msg(Some("1"), "", "Hello", 2),
            msg(Some("2"), "", "Re: hello", 4),
            msg(Some("3"), "", "Other", 3),
            msg(Some("4"), "", "Fwd: Hello (fwd)", 5),
            msg(Some("5"), "", "", 1),
            msg(Some("6"), "", "[list] Re: Other", 6),
        ];
        let its = items(&headers);
        let t = thread(&ThreadAlgorithm::OrderedSubject, &its, false);
        assert_eq!(wire(&t), "* THREAD (5)(1 (2)(4))(3 6)\r\n");
        let t = thread(&ThreadAlgorithm::OrderedSubject, &its, true);
        assert_eq!(wire(&t), "* THREAD (50)(10 (20)(40))(30 60)\r\n");
    }

    #[test]
    fn references_with_missing_parents() {
        let headers = vec![
            msg(Some("a"), "", "Topic", 1),
            msg(Some("b"), "<a@example.com>", "Re: Topic", 2),
            msg(Some("c"), "<a@example.com> <b@example.com>", "Re: Topic", 3),
            msg(Some("d"), "<gone@example.com>", "Lost", 4),
            msg(Some("e"), "<gone@example.com>", "Re: Lost", 5),
            "Message-ID: <f@example.com>\r\nIn-Reply-To: <a@example.com> (sent by x)\r\nSubject: Re: Topic\r\nDate: 6 Mar 2022 12:00:00 +0000\r\n\r\n".into(),
            msg(None, "", "Alone", 7),
            msg(Some("h"), "<zz@example.com>", "Solo", 8),
        ];
        let its = items(&headers);
        let t = thread(&ThreadAlgorithm::References, &its, false);
        assert_eq!(wire(&t), "* THREAD (1 (2 3)(6))((4)(5))(7)(8)\r\n");
        // a reply that arrives before its parent still threads
        let mut rev = headers.clone();
        rev.swap(0, 2);
        let its = items(&rev);
        let t = thread(&ThreadAlgorithm::References, &its, false);
        assert_eq!(wire(&t), "* THREAD (3 (2 1)(6))((4)(5))(7)(8)\r\n");
    }

    #[test]
    fn references_by_subject() {
        let headers = vec![
            msg(Some("x1"), "", "Meeting", 1),
            msg(Some("x2"), "", "Re: Meeting", 2),
            msg(Some("x3"), "", "Meeting", 3),
            msg(Some("y1"), "", "Lunch", 4),
            msg(Some("y2"), "", "Re: lunch", 5),
            msg(Some("z"), "", "", 6),
            msg(Some("z2"), "", "", 7),
        ];
        let its = items(&headers);
        let t = thread(&ThreadAlgorithm::References, &its, false);
        assert_eq!(wire(&t), "* THREAD ((1 2)(3))(4 5)(6)(7)\r\n");
        // REFS leaves subjects alone and orders threads by their latest
        // message
        let t = thread(&ThreadAlgorithm::Refs, &its, false);
        assert_eq!(wire(&t), "* THREAD (1)(2)(3)(4)(5)(6)(7)\r\n");
        let headers = vec![
            msg(Some("p"), "", "P", 1),
            msg(Some("q"), "", "Q", 2),
            msg(Some("p2"), "<p@example.com>", "Re: P", 3),
        ];
        let its = items(&headers);
        let t = thread(&ThreadAlgorithm::Refs, &its, false);
        assert_eq!(wire(&t), "* THREAD (2)(1 3)\r\n");
        let t = thread(&ThreadAlgorithm::References, &its, false);
        assert_eq!(wire(&t), "* THREAD (1 3)(2)\r\n");
        assert!(thread(&ThreadAlgorithm::Other("X".into()), &its, false).is_empty());
        for algo in [
            ThreadAlgorithm::References,
            ThreadAlgorithm::Refs,
            ThreadAlgorithm::OrderedSubject,
        ] {
            assert!(thread(&algo, &[], true).is_empty());
        }
    }

    #[test]
    fn loops_and_duplicates() {
        // each references the other
        let headers = vec![
            msg(Some("a"), "<b@example.com>", "A", 1),
            msg(Some("b"), "<a@example.com>", "B", 2),
        ];
        let t = thread(&ThreadAlgorithm::References, &items(&headers), false);
        assert_eq!(wire(&t), "* THREAD (2 1)\r\n");
        // self references, a cycle inside one References field
        let headers = vec![
            msg(Some("a"), "<a@example.com>", "A", 1),
            msg(
                Some("b"),
                "<x@example.com> <y@example.com> <x@example.com> <b@example.com>",
                "B",
                2,
            ),
        ];
        let t = thread(&ThreadAlgorithm::References, &items(&headers), false);
        assert_eq!(count(&t).1, [1, 2]);
        assert_eq!(wire(&t), "* THREAD (1)(2)\r\n");
        // duplicate Message-IDs: the first one is the one referred to
        let headers = vec![
            msg(Some("dup"), "", "One", 1),
            msg(Some("dup"), "", "Two", 2),
            msg(Some("r"), "<dup@example.com>", "Three", 3),
        ];
        let t = thread(&ThreadAlgorithm::References, &items(&headers), false);
        assert_eq!(wire(&t), "* THREAD (1 3)(2)\r\n");
    }

    #[test]
    fn long_chains() {
        // one References field with thousands of ids
        let refs: Vec<String> = (0..5000).map(|i| format!("<r{i}@example.com>")).collect();
        let headers = vec![msg(Some("m"), &refs.join(" "), "Deep", 1)];
        let t = thread(&ThreadAlgorithm::References, &items(&headers), true);
        assert_eq!(wire(&t), "* THREAD (10)\r\n");
        // a reply chain 2000 deep, written without recursion
        let headers: Vec<String> = (0..2000)
            .map(|i| {
                let refs = if i == 0 {
                    String::new()
                } else {
                    format!("<m{}@example.com>", i - 1)
                };
                msg(Some(&format!("m{i}")), &refs, "Chain", 1)
            })
            .collect();
        let t = thread(&ThreadAlgorithm::References, &items(&headers), false);
        let (nodes, ids) = count(&t);
        assert_eq!(nodes, 2000);
        assert_eq!(ids, (1..=2000).collect::<Vec<u32>>());
        assert!(wire(&t).starts_with("* THREAD (1 2 3 4 "));
    }

    proptest! {
        #[test]
        fn every_message_once(
            msgs in proptest::collection::vec(
                (proptest::option::of(0u8..6), proptest::collection::vec(0u8..6, 0..5),
                 "(Re: )?[ab]?", 0u32..4),
                0..12,
            ),
            algo in prop_oneof![Just(ThreadAlgorithm::References), Just(ThreadAlgorithm::Refs),
                                Just(ThreadAlgorithm::OrderedSubject)],
        ) {
            let headers: Vec<String> = msgs
                .iter()
                .map(|(id, refs, subject, day)| {
                    let refs: Vec<String> =
                        refs.iter().map(|r| format!("<{r}@example.com>")).collect();
                    msg(id.map(|i| i.to_string()).as_deref(), &refs.join(" "), subject, day + 1)
                })
                .collect();
            let its = items(&headers);
            let t = thread(&algo, &its, false);
            let (_, ids) = count(&t);
            prop_assert_eq!(ids, (1..=its.len() as u32).collect::<Vec<u32>>());
            let _ = sort(
                &[SortCriterion { reverse: true, key: SortKey::Subject },
                  SortCriterion { reverse: false, key: SortKey::DisplayFrom }],
                &its,
            );
        }

        #[test]
        fn random_headers(header in proptest::collection::vec(any::<u8>(), 0..300)) {
            let its = [Item { seq: 1, uid: 1, internal_date: 0, size: 0, header: &header }];
            for algo in [ThreadAlgorithm::References, ThreadAlgorithm::OrderedSubject] {
                prop_assert_eq!(count(&thread(&algo, &its, true)).1, vec![1]);
            }
            let all = [SortKey::Arrival, SortKey::Cc, SortKey::Date, SortKey::From, SortKey::Size,
                       SortKey::Subject, SortKey::To, SortKey::DisplayFrom, SortKey::DisplayTo];
            let criteria: Vec<SortCriterion> =
                all.iter().map(|&key| SortCriterion { reverse: false, key }).collect();
            prop_assert_eq!(sort(&criteria, &its), vec![0]);
            let _ = base_subject(&header);
        }
    }
}
