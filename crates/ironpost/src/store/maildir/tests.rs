use super::*;
use crate::mailbox::maildir::deliver;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// A new Maildir in a temporary directory.
fn maildir() -> (tempfile::TempDir, Maildir) {
    let dir = tempfile::tempdir().unwrap();
    let md = Maildir::open(dir.path().join("Maildir"), true).unwrap();
    (dir, md)
}

fn put(md: &Maildir, text: &str) -> PathBuf {
    deliver(md.path(), text.as_bytes(), None).unwrap()
}

fn file_name(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

fn list_text(md: &Maildir) -> String {
    fs::read_to_string(md.path().join(UIDLIST)).unwrap()
}

fn uids(s: &Snapshot) -> Vec<u32> {
    s.messages.iter().map(|m| m.uid).collect()
}

fn seen() -> Flags {
    Flags {
        seen: true,
        ..Flags::default()
    }
}

/// The tracing output of `f`.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    (value, text)
}

#[test]
fn uids_follow_names_and_stay_across_snapshots_and_restarts() {
    let (_dir, md) = maildir();
    for i in 0..5 {
        put(&md, &format!("Subject: {i}\r\n\r\nbody {i}\r\n"));
    }
    let first = md.snapshot().unwrap();
    assert_eq!(uids(&first), vec![1, 2, 3, 4, 5]);
    assert_eq!(first.uidnext, 6);
    assert!(first.uidvalidity > 1_600_000_000, "{}", first.uidvalidity);
    // UIDs in the order of the names' timestamps.
    let mut by_name: Vec<&str> = first.messages.iter().map(|m| m.base.as_str()).collect();
    by_name.sort_by(|a, b| natural_cmp(a, b));
    let by_uid: Vec<&str> = first.messages.iter().map(|m| m.base.as_str()).collect();
    assert_eq!(by_uid, by_name);
    for m in &first.messages {
        assert!(m.recent);
        assert_eq!(m.flags, Flags::default());
        assert_eq!(m.path, md.path().join("new").join(&m.base));
        assert_eq!(m.size, fs::metadata(&m.path).unwrap().len());
    }

    // Nothing moved: POP3 only reads.
    assert_eq!(count(&md.path().join("new")), 5);
    assert_eq!(count(&md.path().join("cur")), 0);

    assert_eq!(md.snapshot().unwrap(), first);
    let restarted = Maildir::open(md.path(), false).unwrap();
    assert_eq!(restarted.snapshot().unwrap(), first);

    // The list, readable as Dovecot's.
    let text = list_text(&md);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with(&format!("3 V{} N6 G", first.uidvalidity)),
        "{header}"
    );
    assert_eq!(
        header.len(),
        format!("3 V{} N6 G", first.uidvalidity).len() + 32
    );
    let body: Vec<String> = lines.map(str::to_string).collect();
    let want: Vec<String> = first
        .messages
        .iter()
        .map(|m| format!("{} :{}", m.uid, m.base))
        .collect();
    assert_eq!(body, want);
    assert!(!md.path().join("ironpost-uidlist.lock").exists());
    assert!(!md.path().join("ironpost-uidlist.tmp").exists());
}

#[test]
fn new_deliveries_get_higher_uids() {
    let (_dir, md) = maildir();
    put(&md, "a: 1\r\n\r\n");
    put(&md, "a: 2\r\n\r\n");
    let before = md.snapshot().unwrap();
    assert_eq!(uids(&before), vec![1, 2]);
    for i in 3..6 {
        put(&md, &format!("a: {i}\r\n\r\n"));
    }
    let after = md.snapshot().unwrap();
    assert_eq!(uids(&after), vec![1, 2, 3, 4, 5]);
    assert_eq!(after.uidvalidity, before.uidvalidity);
    assert_eq!(after.messages[..2], before.messages[..]);
    assert_eq!(after.uidnext, 6);
    assert_eq!(after.get(4).unwrap().uid, 4);
    assert!(after.get(9).is_none());
}

#[test]
fn expunged_uids_are_never_given_again() {
    let (_dir, md) = maildir();
    for i in 0..3 {
        put(&md, &format!("n: {i}\r\n\r\n"));
    }
    let s = md.snapshot().unwrap();
    let (two, three) = (&s.messages[1], &s.messages[2]);
    md.expunge(&[three, two]).unwrap();
    assert!(!two.path.exists() && !three.path.exists());
    let after = md.snapshot().unwrap();
    assert_eq!(uids(&after), vec![1]);
    assert_eq!(after.uidnext, 4);
    assert!(!list_text(&md).contains(&three.base));
    // Gone already: fine.
    md.expunge(&[three]).unwrap();

    put(&md, "n: new\r\n\r\n");
    assert_eq!(uids(&md.snapshot().unwrap()), vec![1, 4]);
    // The highest UID expunged, then a restart: still not given again.
    let s = md.snapshot().unwrap();
    md.expunge(&[&s.messages[1]]).unwrap();
    let md = Maildir::open(md.path(), false).unwrap();
    put(&md, "n: newer\r\n\r\n");
    let s = md.snapshot().unwrap();
    assert_eq!(uids(&s), vec![1, 5]);
    assert_eq!(s.uidnext, 6);
}

#[test]
fn set_flags_renames_into_cur_and_keeps_uid_and_date() {
    let (_dir, md) = maildir();
    put(&md, "Subject: f\r\n\r\nx\r\n");
    let s = md.snapshot().unwrap();
    let m = &s.messages[0];
    let flags = Flags {
        seen: true,
        flagged: true,
        keywords: vec!['c', 'a'],
        ..Flags::default()
    };
    let path = md.set_flags(m, &flags).unwrap();
    assert_eq!(
        path,
        md.path().join("cur").join(format!("{}:2,FSac", m.base))
    );
    assert!(path.is_file() && !m.path.exists());
    assert_eq!(count(&md.path().join("new")), 0);

    let after = md.snapshot().unwrap();
    let n = &after.messages[0];
    assert_eq!((n.uid, &n.base, &n.path), (m.uid, &m.base, &path));
    assert!(n.flags.seen && n.flags.flagged && !n.flags.answered);
    assert_eq!(n.flags.keywords, vec!['a', 'c']);
    assert!(!n.recent);
    assert_eq!(n.internal_date, m.internal_date);
    assert_eq!(n.wire_size, m.wire_size);

    // With the old snapshot's message (its path is stale): followed.
    let path = md.set_flags(m, &seen()).unwrap();
    assert_eq!(file_name(&path), format!("{}:2,S", m.base));
    assert_eq!(md.snapshot().unwrap().messages[0].flags, seen());
    // Same flags again: nothing to do.
    assert_eq!(md.set_flags(n, &seen()).unwrap(), path);

    fs::remove_file(&path).unwrap();
    let err = md.set_flags(m, &Flags::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn read_follows_a_moved_file_and_reports_expunge() {
    let (_dir, md) = maildir();
    put(&md, "Subject: r\r\n\r\nline\r\n");
    let s = md.snapshot().unwrap();
    let m = &s.messages[0];
    assert_eq!(md.read(m).unwrap(), b"Subject: r\n\nline\n");
    // Another client takes it in and marks it seen.
    let moved = md.path().join("cur").join(format!("{}:2,S", m.base));
    fs::rename(&m.path, &moved).unwrap();
    assert_eq!(md.read(m).unwrap(), b"Subject: r\n\nline\n");
    // And changes its flags again.
    let again = md.path().join("cur").join(format!("{}:2,RS", m.base));
    fs::rename(&moved, &again).unwrap();
    assert_eq!(md.read(m).unwrap(), b"Subject: r\n\nline\n");
    // Then expunges it.
    fs::remove_file(&again).unwrap();
    let err = md.read(m).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("expunged"), "{err}");

    // Expunging a message another client moved removes the moved file.
    put(&md, "Subject: e\r\n\r\n");
    let s = md.snapshot().unwrap();
    let m = &s.messages[0];
    let moved = md.path().join("cur").join(format!("{}:2,S", m.base));
    fs::rename(&m.path, &moved).unwrap();
    md.expunge(&[m]).unwrap();
    assert!(!moved.exists());
    assert!(md.snapshot().unwrap().messages.is_empty());
}

#[test]
fn reading_a_message_leaves_its_access_time() {
    let (_dir, md) = maildir();
    put(&md, "Subject: a\r\n\r\ntext\r\n");
    let s = md.snapshot().unwrap();
    let m = &s.messages[0];
    // An access time older than the last change: `relatime` would write a
    // new one at the next read.
    let old = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(&m.path)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(old))
        .unwrap();
    assert_eq!(md.read(m).unwrap(), b"Subject: a\n\ntext\n");
    assert_eq!(
        md.reader()
            .unwrap()
            .read_in(
                m.path.parent().unwrap().ends_with("cur"),
                m.path.file_name().unwrap(),
                m.size
            )
            .unwrap(),
        b"Subject: a\n\ntext\n"
    );
    assert_eq!(fs::metadata(&m.path).unwrap().accessed().unwrap(), old);
}

/// Writes a message file the way Dovecot would have named it.
fn dovecot_file(md: &Maildir, sub: &str, name: &str, content: &[u8]) {
    fs::write(md.path().join(sub).join(name), content).unwrap();
}

#[test]
fn dovecot_uidlist_is_taken_over() {
    let (_dir, md) = maildir();
    let a = b"Subject: a\n\nfrom dovecot\n";
    let b = b"Subject: b\n\nno sizes in the name\nsecond line\n";
    let c = b"Subject: c\n\nonce on courier\n";
    let d = b"Subject: d\n\nnew, not listed yet\n";
    let (sa, wa) = (a.len(), wire_size(a));
    let wb = wire_size(b);
    let base_a = format!("1276528487.M364837P9451.kurkku,S={sa},W={wa}");
    let base_b = "1276533073.M242911P3632.kurkku".to_string();
    let base_c = format!("1276533100.M1P77.kurkku,S={},W={}", c.len(), wire_size(c));
    let base_d = format!("1276540000.M5P9.kurkku,S={},W={}", d.len(), wire_size(d));
    dovecot_file(&md, "cur", &format!("{base_a}:2,S"), a);
    dovecot_file(&md, "cur", &format!("{base_b}:2,F"), b);
    dovecot_file(&md, "cur", &format!("{base_c}:2,RS"), c);
    dovecot_file(&md, "new", &base_d, d);
    // Dovecot writes the last known names, flags and all; an expunged
    // message may still be listed; `P` keeps a UIDL from before Dovecot.
    let list = format!(
        "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n\
         25006 :{base_a}:2,\n\
         25010 :1276530000.M1P1.kurkku,S=10,W=11:2,S\n\
         25017 W{wb} :{base_b}:2,F\n\
         25020 P1276533100.courier-uidl G00112233445566778899aabbccddeeff :{base_c}:2,S\n"
    );
    fs::write(md.path().join(DOVECOT_UIDLIST), &list).unwrap();

    let (s, log) = logged(|| md.snapshot().unwrap());
    assert!(log.contains("taken over"), "{log}");
    assert_eq!(s.uidvalidity, 1275660208);
    assert_eq!(uids(&s), vec![25006, 25017, 25020, 25022]);
    assert_eq!(s.uidnext, 25023);
    let [ma, mb, mc, md_] = &s.messages[..] else {
        panic!("{s:?}");
    };
    assert_eq!(ma.base, base_a);
    assert!(ma.flags.seen && !ma.recent);
    assert_eq!(mb.base, base_b);
    assert!(mb.flags.flagged);
    assert_eq!(mb.wire_size, wb);
    assert!(mc.flags.answered && mc.flags.seen);
    assert_eq!(md_.base, base_d);
    assert!(md_.recent);
    // POP3 clients keep their UIDLs.
    assert_eq!(s.pop3_uidl(ma), "000061ae4c0907b0");
    assert_eq!(s.pop3_uidl(mb), super::super::pop3_uidl(1275660208, 25017));
    assert_eq!(s.pop3_uidl(mc), "1276533100.courier-uidl");
    assert_eq!(s.pop3_uidl(md_), "000061be4c0907b0");
    for m in &s.messages {
        assert_eq!(m.wire_size, wire_size(&md.read(m).unwrap()), "{}", m.base);
    }

    // Ours now, with Dovecot's fields kept; Dovecot's list untouched.
    let ours = list_text(&md);
    assert!(
        ours.starts_with("3 V1275660208 N25023 G3085f01b7f11094c501100008c4a11c1\n"),
        "{ours}"
    );
    assert!(ours.contains(&format!(
        "25020 P1276533100.courier-uidl G00112233445566778899aabbccddeeff :{base_c}\n"
    )));
    assert!(ours.contains(&format!("25022 :{base_d}\n")), "{ours}");
    assert!(!ours.contains("1276530000.M1P1"), "{ours}");
    assert_eq!(
        fs::read_to_string(md.path().join(DOVECOT_UIDLIST)).unwrap(),
        list
    );

    // Read once: a changed dovecot-uidlist is not looked at again.
    fs::write(md.path().join(DOVECOT_UIDLIST), "3 V1 N1\n").unwrap();
    let again = Maildir::open(md.path(), false).unwrap().snapshot().unwrap();
    assert_eq!(again, s);
}

#[test]
fn dovecot_list_with_a_bad_line_keeps_the_other_uids() {
    let (_dir, md) = maildir();
    dovecot_file(&md, "cur", "1300000000.M1P1.h,S=2,W=3:2,S", b"a\n");
    dovecot_file(&md, "cur", "1300000001.M1P1.h,S=2,W=3:2,S", b"b\n");
    fs::write(
        md.path().join(DOVECOT_UIDLIST),
        "3 V1299999999 N40 G3085f01b7f11094c501100008c4a11c1\n\
         17 :1300000000.M1P1.h,S=2,W=3\n\
         oops :1300000001.M1P1.h,S=2,W=3\n",
    )
    .unwrap();
    let (s, log) = logged(|| md.snapshot().unwrap());
    assert_eq!(s.uidvalidity, 1299999999);
    assert_eq!(uids(&s), vec![17, 40]);
    assert!(log.contains("dovecot-uidlist: line 3: bad UID"), "{log}");
}

#[test]
fn corrupt_list_is_rebuilt_with_a_new_uidvalidity() {
    let (_dir, md) = maildir();
    for i in 0..3 {
        put(&md, &format!("c: {i}\r\n\r\n"));
    }
    let before = md.snapshot().unwrap();
    let path = md.path().join(UIDLIST);
    let text = list_text(&md);
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "two :x";
    fs::write(&path, lines.join("\n") + "\n").unwrap();

    let (after, log) = logged(|| md.snapshot().unwrap());
    assert!(
        log.contains(&format!("{}: line 3: bad UID", path.display())),
        "{log}"
    );
    assert!(after.uidvalidity > before.uidvalidity);
    assert_eq!(uids(&after), vec![1, 2, 3]);
    assert_eq!(
        UidList::parse(list_text(&md).as_bytes())
            .unwrap()
            .uidvalidity,
        after.uidvalidity
    );

    // A header of another version: its V is still above.
    fs::write(&path, format!("2 V{} N9\n", after.uidvalidity)).unwrap();
    let (again, log) = logged(|| md.snapshot().unwrap());
    assert!(log.contains("line 1: unknown version"), "{log}");
    assert!(again.uidvalidity > after.uidvalidity);
    assert_eq!(uids(&again), vec![1, 2, 3]);

    // Garbage, or not a file at all: rebuilt too.
    fs::write(&path, b"\x00\x01garbage").unwrap();
    assert_eq!(uids(&md.snapshot().unwrap()), vec![1, 2, 3]);
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
    let (s, log) = logged(|| md.snapshot().unwrap());
    assert_eq!(uids(&s), vec![1, 2, 3]);
    assert!(log.contains("a symbolic link"), "{log}");
    assert!(fs::symlink_metadata(&path).unwrap().is_file());
}

#[test]
fn wire_size_is_the_crlf_length_with_or_without_w() {
    let (_dir, md) = maildir();
    // Delivered: W= in the name.
    let crlf = "Subject: w\r\n\r\none\r\ntwo\r\n";
    put(&md, crlf);
    // Put there by hand (another tool): no sizes in the name.
    let cur = md.path().join("cur");
    fs::write(cur.join("1700000000.hand:2,S"), b"a\nb\n").unwrap();
    // S= in the name is wrong: W= is not trusted.
    fs::write(cur.join("1700000001.x,S=999,W=1:2,"), b"abc\n").unwrap();
    // Stored with CRLF already.
    fs::write(cur.join("1700000002.crlf:2,"), b"a\r\nb\n").unwrap();

    let s = md.snapshot().unwrap();
    assert_eq!(s.messages.len(), 4);
    for m in &s.messages {
        let stored = md.read(m).unwrap();
        assert_eq!(m.wire_size, wire_size(&stored), "{}", m.base);
        assert_eq!(m.size, stored.len() as u64);
    }
    let by_base = |b: &str| s.messages.iter().find(|m| m.base == b).unwrap().clone();
    assert_eq!(by_base("1700000000.hand").wire_size, 6);
    assert_eq!(by_base("1700000001.x,S=999,W=1").wire_size, 5);
    assert_eq!(by_base("1700000002.crlf").wire_size, 6);
    let delivered = s.messages.iter().find(|m| m.recent).unwrap();
    assert_eq!(delivered.wire_size, crlf.len() as u64);

    // Counted once, then read from the list.
    let text = list_text(&md);
    assert!(text.contains(" W6 S4 :1700000000.hand\n"), "{text}");
    assert!(text.contains(" W5 S4 :1700000001.x,S=999,W=1\n"), "{text}");
    assert_eq!(md.snapshot().unwrap(), s);

    // A file changed behind our back (its size says so): counted again
    // once a read has noticed (message files are not supposed to change,
    // so a snapshot does not stat the files it knows).
    fs::write(cur.join("1700000000.hand:2,S"), b"a\nb\nc\n").unwrap();
    let s = md.snapshot().unwrap();
    let hand = s.messages.iter().find(|m| m.base == "1700000000.hand");
    assert_eq!(md.read(hand.unwrap()).unwrap(), b"a\nb\nc\n");
    let s = md.snapshot().unwrap();
    let hand = s
        .messages
        .iter()
        .find(|m| m.base == "1700000000.hand")
        .unwrap();
    assert_eq!((hand.size, hand.wire_size), (6, 9));
}

#[test]
fn append_stores_in_cur_and_lists_at_once() {
    let (_dir, md) = maildir();
    put(&md, "Subject: first\r\n\r\n");
    let first = md.snapshot().unwrap();
    let date = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let msg = b"Subject: appended\r\n\r\nhello\r\nworld\r\n";
    let flags = Flags {
        seen: true,
        draft: true,
        ..Flags::default()
    };
    let (uid, path) = md.append(msg, &flags, Some(date)).unwrap();
    assert_eq!(uid, 2);
    assert_eq!(path.parent().unwrap(), md.path().join("cur"));
    let name = file_name(&path);
    let base = base_name(name);
    assert_eq!(name, format!("{base}:2,DS"));
    assert_eq!(name_field(base, 'S'), Some(to_lf(msg).len() as u64));
    assert_eq!(name_field(base, 'W'), Some(msg.len() as u64));
    assert!(
        base.contains(&format!("P{}A", std::process::id())),
        "{base}"
    );
    assert_eq!(fs::read(&path).unwrap(), to_lf(msg));
    assert_eq!(count(&md.path().join("tmp")), 0);
    // Listed before any snapshot.
    assert!(list_text(&md).contains(&format!("\n2 :{base}\n")));

    let s = md.snapshot().unwrap();
    assert_eq!(s.uidvalidity, first.uidvalidity);
    let m = s.get(uid).unwrap();
    assert_eq!(m.path, path);
    assert_eq!(m.flags, flags);
    assert_eq!(m.internal_date, date);
    assert_eq!(m.wire_size, msg.len() as u64);
    assert!(!m.recent);

    // LF input, no date: now; a delivery after it comes after it.
    let (uid3, _) = md.append(b"a\nb\n", &Flags::default(), None).unwrap();
    assert_eq!(uid3, 3);
    put(&md, "Subject: later\r\n\r\n");
    let s = md.snapshot().unwrap();
    assert_eq!(uids(&s), vec![1, 2, 3, 4]);
    assert_eq!(s.get(3).unwrap().wire_size, 6);
}

#[test]
fn move_new_to_cur_only_when_asked() {
    let (_dir, md) = maildir();
    put(&md, "a: 1\r\n\r\n");
    put(&md, "a: 2\r\n\r\n");
    let s = md.snapshot().unwrap();
    let all: Vec<&Message> = s.messages.iter().collect();
    let moved = md.move_new_to_cur(&all).unwrap();
    for (m, p) in s.messages.iter().zip(&moved) {
        let p = p.as_ref().unwrap();
        assert_eq!(*p, md.path().join("cur").join(format!("{}:2,", m.base)));
        assert!(p.is_file());
    }
    let after = md.snapshot().unwrap();
    assert_eq!(uids(&after), uids(&s));
    assert!(after.messages.iter().all(|m| !m.recent));
    // Already in cur/: left alone, wherever they went.
    let stale: Vec<&Message> = s.messages.iter().collect();
    assert_eq!(md.move_new_to_cur(&stale).unwrap(), moved);
    fs::remove_file(moved[0].as_ref().unwrap()).unwrap();
    let again = md.move_new_to_cur(&stale).unwrap();
    assert_eq!(again[0], None);
    assert_eq!(again[1], moved[1]);
}

#[test]
fn only_message_files_are_shown() {
    let (dir, md) = maildir();
    let real = put(&md, "Subject: real\r\n\r\n");
    // Being written, hidden, not files.
    fs::write(md.path().join("tmp/1700000000.M1P1Q1.half"), b"Subj").unwrap();
    fs::write(md.path().join("new/.1700000000.hidden"), b"x\n").unwrap();
    fs::create_dir(md.path().join("cur/1700000000.dir:2,")).unwrap();
    let secret = dir.path().join("secret");
    fs::write(&secret, b"root's\n").unwrap();
    std::os::unix::fs::symlink(&secret, md.path().join("cur/1700000000.link:2,S")).unwrap();
    nix::unistd::mkfifo(
        &md.path().join("new/1700000000.fifo"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let s = md.snapshot().unwrap();
    assert_eq!(s.messages.len(), 1);
    assert_eq!(s.messages[0].path, real);
}

#[test]
fn folders_have_their_own_lists() {
    let (dir, md) = maildir();
    let sent = crate::mailbox::maildir::create_folder(md.path(), "Sent", None).unwrap();
    let sent = Maildir::open(sent, false).unwrap();
    put(&md, "in: box\r\n\r\n");
    let (uid, _) = sent.append(b"sent: 1\r\n\r\n", &seen(), None).unwrap();
    assert_eq!(uid, 1);
    assert_eq!(uids(&md.snapshot().unwrap()), vec![1]);
    assert_eq!(uids(&sent.snapshot().unwrap()), vec![1]);
    assert!(sent.path().join(UIDLIST).is_file());
    assert!(Maildir::open(dir.path().join("none"), false).is_err());
}

#[test]
fn stale_lock_of_a_dead_process_does_not_stop_snapshots() {
    let (_dir, md) = maildir();
    put(&md, "x: 1\r\n\r\n");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let host = nix::unistd::gethostname().unwrap();
    let lock = md.path().join("ironpost-uidlist.lock");
    fs::write(&lock, format!("{pid}:{}\n", host.to_string_lossy())).unwrap();
    let (s, log) = logged(|| md.snapshot().unwrap());
    assert_eq!(uids(&s), vec![1]);
    assert!(log.contains("stale lock"), "{log}");
    assert!(!lock.exists());
}

#[test]
fn threads_snapshotting_during_deliveries_agree_on_uids() {
    let (_dir, md) = maildir();
    let delivering = AtomicUsize::new(4);
    let observed = Mutex::new(Vec::<HashMap<String, u32>>::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (md, delivering) = (&md, &delivering);
            s.spawn(move || {
                for i in 0..50 {
                    put(md, &format!("From: t{t}\r\nSubject: {i}\r\n\r\nbody\r\n"));
                }
                delivering.fetch_sub(1, AtomicOrdering::SeqCst);
            });
        }
        for t in 0..8 {
            let (md, delivering, observed) = (&md, &delivering, &observed);
            s.spawn(move || {
                let mut seen_here = HashMap::new();
                let mut last = 0;
                loop {
                    let done = delivering.load(AtomicOrdering::SeqCst) == 0;
                    let snap = md.snapshot().unwrap();
                    // One thread also changes flags, as IMAP would.
                    if t == 0
                        && let Some(m) = snap.messages.last()
                    {
                        md.set_flags(m, &seen()).unwrap();
                    }
                    let ids = uids(&snap);
                    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
                    assert!(snap.uidnext > ids.last().copied().unwrap_or(0));
                    assert!(snap.messages.len() >= last, "a message vanished");
                    last = snap.messages.len();
                    for m in snap.messages {
                        let uid = *seen_here.entry(m.base.clone()).or_insert(m.uid);
                        assert_eq!(uid, m.uid, "{} changed UID", m.base);
                    }
                    if done {
                        break;
                    }
                }
                observed.lock().unwrap().push(seen_here);
            });
        }
    });
    let last = md.snapshot().unwrap();
    assert_eq!(last.messages.len(), 200);
    let final_uids: HashMap<&str, u32> = last
        .messages
        .iter()
        .map(|m| (m.base.as_str(), m.uid))
        .collect();
    let distinct: HashSet<u32> = final_uids.values().copied().collect();
    assert_eq!(distinct.len(), 200);
    assert_eq!(last.uidnext, 201);
    for thread in observed.into_inner().unwrap() {
        for (base, uid) in thread {
            assert_eq!(final_uids.get(base.as_str()), Some(&uid), "{base}");
        }
    }
}

/// Set for the child processes of `processes_agree_on_uids`.
const CHILD_MAILDIR: &str = "IRONPOST_STORE_TEST_MAILDIR";
const CHILD_OUT: &str = "IRONPOST_STORE_TEST_OUT";

#[test]
#[ignore = "a child process of processes_agree_on_uids"]
fn child_snapshotter() {
    let (Ok(dir), Ok(out)) = (std::env::var(CHILD_MAILDIR), std::env::var(CHILD_OUT)) else {
        return;
    };
    let md = Maildir::open(&dir, false).unwrap();
    let stop = Path::new(&dir).join("stop");
    let mut out = io::BufWriter::new(File::create(out).unwrap());
    let mut last = None;
    for _ in 0..100_000 {
        let stopping = stop.exists();
        let s = md.snapshot().unwrap();
        if last.as_ref() != Some(&s) {
            for m in &s.messages {
                writeln!(out, "{} {} {}", s.uidvalidity, m.uid, m.base).unwrap();
            }
            last = Some(s);
        }
        if stopping {
            break;
        }
    }
    out.flush().unwrap();
}

#[test]
fn processes_agree_on_uids() {
    let (dir, md) = maildir();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            let out = dir.path().join(format!("child{i}.out"));
            let child = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "store::maildir::tests::child_snapshotter",
                    "--ignored",
                    "--test-threads=1",
                    "-q",
                ])
                .env(CHILD_MAILDIR, md.path())
                .env(CHILD_OUT, &out)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    for i in 0..60 {
        put(&md, &format!("Subject: {i}\r\n\r\n"));
        if i % 7 == 0 {
            md.snapshot().unwrap();
        }
    }
    fs::write(md.path().join("stop"), b"").unwrap();
    let last = md.snapshot().unwrap();
    assert_eq!(last.messages.len(), 60);
    let mut lines = 0;
    for (mut child, out) in children {
        assert!(child.wait().unwrap().success());
        for line in fs::read_to_string(out).unwrap().lines() {
            let mut f = line.splitn(3, ' ');
            let v: u32 = f.next().unwrap().parse().unwrap();
            let uid: u32 = f.next().unwrap().parse().unwrap();
            let base = f.next().unwrap();
            assert_eq!(v, last.uidvalidity, "{line}");
            assert_eq!(last.get(uid).map(|m| m.base.as_str()), Some(base), "{line}");
            lines += 1;
        }
    }
    // The children did take snapshots.
    assert!(lines > 0);
}

#[test]
fn names_sort_by_their_numbers() {
    let mut names = vec![
        "1700000001.M5P1Q1.h",
        "1700000000.M999999P1Q1.h",
        "1700000000.M1000P1Q10.h",
        "1700000000.M1000P1Q9.h",
        "999999999.M1P1Q1.h",
        "hand-made",
    ];
    names.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(
        names,
        vec![
            "999999999.M1P1Q1.h",
            "1700000000.M1000P1Q9.h",
            "1700000000.M1000P1Q10.h",
            "1700000000.M999999P1Q1.h",
            "1700000001.M5P1Q1.h",
            "hand-made",
        ]
    );
    assert_eq!(natural_cmp("a01", "a1"), Ordering::Greater);
    assert_eq!(natural_cmp("a1", "a1"), Ordering::Equal);
}

#[test]
fn changes_right_after_a_snapshot_show_in_the_next() {
    let (_dir, md) = maildir();
    let a = put(&md, "Subject: a\n\nx\n");
    let s = md.snapshot().unwrap();
    assert_eq!(uids(&s), [1]);
    // Another tool, within the same second: moves it to cur/ with \Seen,
    // and delivers another.
    let cur = md.path().join("cur").join(format!("{}:2,S", file_name(&a)));
    fs::rename(&a, &cur).unwrap();
    put(&md, "Subject: b\n\ny\n");
    let s = md.snapshot().unwrap();
    assert_eq!(uids(&s), [1, 2]);
    assert!(s.get(1).unwrap().flags.seen && !s.get(1).unwrap().recent);
    // And removes the first.
    fs::remove_file(&cur).unwrap();
    assert_eq!(uids(&md.snapshot().unwrap()), [2]);
    // A second Maildir value of the same folder sees the same.
    let again = Maildir::open(md.path(), false).unwrap();
    assert_eq!(uids(&again.snapshot().unwrap()), [2]);
}

#[test]
fn set_flags_many_renames_each_and_reports_expunged_ones() {
    let (_dir, md) = maildir();
    put(&md, "Subject: a\r\n\r\na\r\n");
    put(&md, "Subject: b\r\n\r\nb\r\n");
    put(&md, "Subject: c\r\n\r\nc\r\n");
    let s = md.snapshot().unwrap();
    let [a, b, c] = [&s.messages[0], &s.messages[1], &s.messages[2]];
    fs::remove_file(&b.path).unwrap();
    let flagged = Flags {
        flagged: true,
        ..Flags::default()
    };
    let paths = md
        .set_flags_many(&[(a, seen()), (b, seen()), (c, flagged.clone())])
        .unwrap();
    assert_eq!(paths.len(), 3);
    assert_eq!(
        file_name(paths[0].as_ref().unwrap()),
        format!("{}:2,S", a.base)
    );
    assert!(paths[1].is_none());
    assert_eq!(
        file_name(paths[2].as_ref().unwrap()),
        format!("{}:2,F", c.base)
    );
    let after = md.snapshot().unwrap();
    assert_eq!(uids(&after), vec![a.uid, c.uid]);
    assert_eq!(after.messages[0].flags, seen());
    assert_eq!(after.messages[1].flags, flagged);
}

#[test]
fn copy_in_gives_new_uids_keeps_content_date_and_sets_flags() {
    let dir = tempfile::tempdir().unwrap();
    let from = Maildir::open(dir.path().join("Maildir"), true).unwrap();
    let to = Maildir::open(dir.path().join("Maildir/.Archive"), true).unwrap();
    put(&to, "Subject: already there\r\n\r\nz\r\n");
    put(&from, "Subject: one\r\n\r\nbody one\r\n");
    put(&from, "Subject: two\r\n\r\nbody two\r\n");
    put(&from, "Subject: three\r\n\r\nbody three\r\n");
    let s = from.snapshot().unwrap();
    let before = to.snapshot().unwrap();
    let [one, two, three] = [&s.messages[0], &s.messages[1], &s.messages[2]];
    // A source that moved since the snapshot is followed; one that is
    // gone gets no UID.
    let moved = from.set_flags(one, &seen()).unwrap();
    assert_ne!(moved, one.path);
    fs::remove_file(&two.path).unwrap();
    let answered = Flags {
        answered: true,
        ..Flags::default()
    };
    let copied = to
        .copy_in(&[(one, seen()), (two, seen()), (three, answered.clone())])
        .unwrap();
    assert_eq!(copied.len(), 3);
    assert!(copied[1].is_none());
    let (u1, p1) = copied[0].clone().unwrap();
    let (u3, p3) = copied[2].clone().unwrap();
    assert!(u1 >= before.uidnext && u3 == u1 + 1);
    assert_eq!(fs::read(&p1).unwrap(), fs::read(&moved).unwrap());
    assert!(p1.starts_with(to.path().join("cur")));

    let after = to.snapshot().unwrap();
    assert_eq!(after.messages.len(), 3);
    assert_eq!(after.uidvalidity, before.uidvalidity);
    let c1 = after.get(u1).unwrap();
    let c3 = after.get(u3).unwrap();
    assert_eq!((c1.flags.clone(), c3.flags.clone()), (seen(), answered));
    assert_eq!(c1.internal_date, one.internal_date);
    assert_eq!(c3.internal_date, three.internal_date);
    assert_eq!(c3.wire_size, three.wire_size);
    assert_eq!(to.read(c3).unwrap(), from.read(three).unwrap());
    // The source is untouched and the copies are new files: changing the
    // copy's flags leaves the original as it was.
    to.set_flags(c3, &Flags::default()).unwrap();
    assert_eq!(from.snapshot().unwrap().messages.len(), 2);
    assert_eq!(
        from.snapshot().unwrap().get(three.uid).unwrap().flags,
        Flags::default()
    );
    assert!(p3.exists() || to.snapshot().unwrap().get(u3).is_some());
    assert_eq!(count(&to.path().join("tmp")), 0);
}
