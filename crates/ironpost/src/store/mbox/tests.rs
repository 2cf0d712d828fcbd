use super::*;
use crate::mailbox::mbox::{MboxOptions, deliver, lock_path};
use crate::store::pop3_uidl;

/// A mailbox in a temporary directory: the spool file `spool/jerry` (not
/// created) and its state directory.
struct Fixture {
    dir: tempfile::TempDir,
    mbox: Mbox,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("spool")).unwrap();
        let mbox = Mbox::open(&dir.path().join("spool/jerry"), &dir.path().join("state")).unwrap();
        Fixture { dir, mbox }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("spool/jerry")
    }

    /// Another process's view of the same mailbox: its own `Mbox`, as
    /// after a restart.
    fn reopen(&self) -> Mbox {
        Mbox::open(&self.path(), &self.dir.path().join("state")).unwrap()
    }

    fn deliver(&self, sender: &str, message: &str) {
        deliver(
            &self.path(),
            sender,
            SystemTime::now(),
            message.as_bytes(),
            &MboxOptions::default(),
        )
        .unwrap();
    }

    fn write(&self, text: &[u8]) {
        fs::write(self.path(), text).unwrap();
    }

    fn bytes(&self) -> Vec<u8> {
        fs::read(self.path()).unwrap()
    }

    fn list(&self) -> String {
        fs::read_to_string(self.dir.path().join("state").join(UIDLIST)).unwrap()
    }
}

fn uids(s: &Snapshot) -> Vec<u32> {
    s.messages.iter().map(|m| m.uid).collect()
}

fn contents(mbox: &Mbox, s: &Snapshot) -> Vec<String> {
    s.messages
        .iter()
        .map(|m| String::from_utf8(mbox.read(m).unwrap()).unwrap())
        .collect()
}

fn subject(i: usize) -> String {
    format!("From: a@b.test\r\nSubject: {i}\r\n\r\nbody {i}\r\n")
}

const DATE: &str = "Sun Nov 22 19:22:52 2026";

#[test]
fn delivered_messages_split_at_from_lines_only_after_empty_lines() {
    let f = Fixture::new();
    f.deliver(
        "a@b.test",
        "Subject: one\r\n\r\nFrom here on\r\n\r\nFrom there\r\n>From quoted\r\n",
    );
    f.deliver("", "Subject: two\r\n\r\nno final newline");
    f.deliver(
        "c@d.test",
        "Subject: three\r\n\r\nends in an empty line\r\n\r\n",
    );
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&s), vec![1, 2, 3]);
    assert_eq!(s.uidnext, 4);
    assert_eq!(
        contents(&f.mbox, &s),
        vec![
            "Subject: one\n\n>From here on\n\n>From there\n>From quoted\n",
            // Delivery gave it a line end.
            "Subject: two\n\nno final newline\n",
            "Subject: three\n\nends in an empty line\n\n",
        ]
    );
    for m in &s.messages {
        let data = f.mbox.read(m).unwrap();
        assert_eq!(m.size, data.len() as u64);
        assert_eq!(m.wire_size, crate::mailbox::maildir::wire_size(&data));
        assert_eq!(m.path, f.path());
        assert!(m.recent);
        assert_eq!(m.flags, Flags::default());
        assert_eq!(m.pop3_uidl, None);
    }
    assert_eq!(s.messages[0].wire_size, s.messages[0].size + 6);
    assert!(!lock_path(&f.path()).exists(), "dot lock released");
}

#[test]
fn hand_written_files_without_final_newline_or_empty_line() {
    let f = Fixture::new();
    // No empty line at the end, and a "From " line that follows no empty
    // line (not a separator).
    f.write(
        format!(
            "From a@b  {DATE}\nS: 1\n\nb1\nFrom me, unquoted\n\n\
             From c@d  {DATE}\nS: 2\n\nb2\n"
        )
        .as_bytes(),
    );
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(
        contents(&f.mbox, &s),
        vec!["S: 1\n\nb1\nFrom me, unquoted\n", "S: 2\n\nb2\n"]
    );
    // No line end at all at the end.
    f.write(format!("From a@b  {DATE}\nS: 1\n\nb1\n\nFrom c@d  {DATE}\nS: 2\n\nb2").as_bytes());
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(contents(&f.mbox, &s), vec!["S: 1\n\nb1\n", "S: 2\n\nb2"]);
    assert_eq!(s.messages[1].size, 8);
    assert_eq!(s.messages[1].wire_size, 10);
    // Delivery after that: it adds the line end, the message stays.
    f.deliver("e@f", "S: 3\r\n\r\nb3\r\n");
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(
        contents(&f.mbox, &s),
        vec!["S: 1\n\nb1\n", "S: 2\n\nb2\n", "S: 3\n\nb3\n"]
    );
    assert_eq!(uids(&s), vec![1, 2, 3]);

    // A line end but no empty line at the end: delivery's `From ` line
    // follows "b2" directly; its date makes it a separator.
    let g = Fixture::new();
    g.write(format!("From a@b  {DATE}\nS: 1\n\nb1\n\nFrom c@d  {DATE}\nS: 2\n\nb2\n").as_bytes());
    let before = g.mbox.snapshot().unwrap();
    g.deliver("e@f", "S: 3\r\n\r\nFrom the body\r\n");
    let s = g.mbox.snapshot().unwrap();
    assert_eq!(uids(&s), vec![1, 2, 3]);
    assert_eq!(s.messages[..2], before.messages[..]);
    assert_eq!(
        contents(&g.mbox, &s),
        vec!["S: 1\n\nb1\n", "S: 2\n\nb2\n", "S: 3\n\n>From the body\n"]
    );
    // Expunging the one before it leaves a well-formed file.
    g.mbox.expunge(&[&s.messages[1]]).unwrap();
    let after = g.reopen().snapshot().unwrap();
    assert_eq!(uids(&after), vec![1, 3]);
    assert_eq!(
        contents(&g.mbox, &after),
        vec!["S: 1\n\nb1\n", "S: 3\n\n>From the body\n"]
    );
}

#[test]
fn what_comes_before_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"\nab\n\r\nx\n\n").unwrap();
    let f = File::open(&path).unwrap();
    let want = [
        Before::Start,  // 0: the start
        Before::Start,  // 1: after the empty first line
        Before::Inside, // 2
        Before::Inside, // 3
        Before::Line,   // 4: after "ab\n"
        Before::Inside, // 5: between CR and LF
        Before::Start,  // 6: after "\r\n"
        Before::Inside, // 7
        Before::Line,   // 8: after "x\n"
        Before::Start,  // 9: after "\n"
    ];
    for (at, want) in want.iter().enumerate() {
        assert_eq!(line_before(&f, at as u64).unwrap(), *want, "at {at}");
    }
    fs::write(&path, b"\r\nx").unwrap();
    let f = File::open(&path).unwrap();
    assert_eq!(line_before(&f, 2).unwrap(), Before::Start);
}

#[test]
fn crlf_files_empty_messages_and_junk() {
    let f = Fixture::new();
    f.write(
        format!(
            "junk before\n\nFrom a@b  {DATE}\r\nS: 1\r\n\r\nb1\r\n\r\n\
             From c@d  {DATE}\n\nFrom e@f  {DATE}\n"
        )
        .as_bytes(),
    );
    let s = f.mbox.snapshot().unwrap();
    let c = contents(&f.mbox, &s);
    assert_eq!(c, vec!["S: 1\r\n\r\nb1\r\n", "", ""]);
    // CRLF already: no extra bytes on the wire.
    assert_eq!(s.messages[0].wire_size, s.messages[0].size);
    assert_eq!(s.messages[1].size, 0);
    // The junk is kept through an expunge.
    f.mbox.expunge(&[&s.messages[0]]).unwrap();
    assert_eq!(
        f.bytes(),
        format!("junk before\n\nFrom c@d  {DATE}\n\nFrom e@f  {DATE}\n").as_bytes()
    );
    assert_eq!(uids(&f.mbox.snapshot().unwrap()), vec![2, 3]);
}

#[test]
fn missing_and_empty_files_are_empty_mailboxes() {
    let f = Fixture::new();
    let s = f.mbox.snapshot().unwrap();
    assert!(s.messages.is_empty());
    assert_eq!(s.uidnext, 1);
    assert!(!f.path().exists(), "the mbox is not created");
    assert!(!lock_path(&f.path()).exists());
    f.write(b"");
    let again = f.reopen().snapshot().unwrap();
    assert!(again.messages.is_empty());
    assert_eq!(again.uidvalidity, s.uidvalidity);
    // A first delivery gets UID 1 under the same UIDVALIDITY.
    f.deliver("a@b", &subject(0));
    let s2 = f.mbox.snapshot().unwrap();
    assert_eq!((uids(&s2), s2.uidvalidity), (vec![1], s.uidvalidity));
    // A directory is not an mbox.
    let err = Mbox::open(f.dir.path(), &f.dir.path().join("st2")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
}

#[test]
fn uids_stay_across_snapshots_restarts_deliveries_and_expunges() {
    let f = Fixture::new();
    for i in 0..4 {
        f.deliver("a@b.test", &subject(i));
    }
    let first = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&first), vec![1, 2, 3, 4]);
    assert!(first.uidvalidity > 1_600_000_000);
    assert_eq!(f.mbox.snapshot().unwrap(), first);
    let other = f.reopen();
    assert_eq!(other.snapshot().unwrap(), first);
    let list = f.list();
    assert!(
        list.starts_with(&format!("3 V{} N5 G", first.uidvalidity)),
        "{list}"
    );
    for m in &first.messages {
        assert!(list.contains(&format!("{} :{}\n", m.uid, m.base)), "{list}");
        assert_eq!(m.base.len(), 32);
    }

    // Another process expunges message 2; the others keep their UIDs.
    other.expunge(&[&first.messages[1]]).unwrap();
    let after = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&after), vec![1, 3, 4]);
    assert_eq!(after.uidnext, 5);
    for m in &after.messages {
        assert_eq!(first.get(m.uid).unwrap().base, m.base);
    }
    // New deliveries get higher UIDs, never 2 again.
    f.deliver("a@b.test", &subject(4));
    f.deliver("a@b.test", &subject(5));
    let later = f.reopen().snapshot().unwrap();
    assert_eq!(uids(&later), vec![1, 3, 4, 5, 6]);
    assert_eq!(later.uidvalidity, first.uidvalidity);
    assert_eq!(
        contents(&f.mbox, &later)[3],
        "From: a@b.test\nSubject: 4\n\nbody 4\n"
    );
    // Expunging the last ones leaves uidnext where it was.
    let last: Vec<&Message> = later.messages[3..].iter().collect();
    f.mbox.expunge(&last).unwrap();
    let s = f.mbox.snapshot().unwrap();
    assert_eq!((uids(&s), s.uidnext), (vec![1, 3, 4], 7));
}

#[test]
fn mutt_marking_a_message_read_keeps_its_uid() {
    let f = Fixture::new();
    f.deliver("a@b.test", &subject(0));
    f.deliver("a@b.test", &subject(1));
    let s = f.mbox.snapshot().unwrap();
    // What mutt writes when it syncs: Status, X-Status, Content-Length,
    // Lines added to the headers, the first message grows.
    let text = String::from_utf8(f.bytes()).unwrap();
    let text = text.replacen(
        "Subject: 0\n",
        "Subject: 0\nStatus: RO\nX-Status: A\nContent-Length: 7\nLines: 1\n",
        1,
    );
    f.write(text.as_bytes());
    let now = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&now), vec![1, 2]);
    assert_eq!(now.messages[0].base, s.messages[0].base);
    assert!(now.messages[0].flags.seen && now.messages[0].flags.answered);
    assert!(!now.messages[0].recent);
    // The old snapshot's message 2 moved; read finds it by key.
    assert_eq!(
        f.mbox.read(&s.messages[1]).unwrap(),
        b"From: a@b.test\nSubject: 1\n\nbody 1\n"
    );
    let fresh = f.reopen();
    assert_eq!(
        fresh.read(&s.messages[1]).unwrap(),
        b"From: a@b.test\nSubject: 1\n\nbody 1\n"
    );
}

#[test]
fn flags_come_from_status_and_x_status() {
    let f = Fixture::new();
    let msg = |status: &str| format!("From a@b  {DATE}\nSubject: x\n{status}\nbody\n\n");
    let mut text = String::new();
    for h in [
        "X-Other: 1",
        "Status: O",
        "Status: RO",
        "X-Status: AFTD",
        "Status: R\nX-Status: F",
        "status: ro\nX-Status:\n D",
    ] {
        text.push_str(&msg(&format!("{h}\n")));
    }
    f.write(text.as_bytes());
    let s = f.mbox.snapshot().unwrap();
    let got: Vec<(String, bool)> = s
        .messages
        .iter()
        .map(|m| (m.flags.to_string(), m.recent))
        .collect();
    // Letters in Maildir order: D draft, F flagged, R answered, S seen,
    // T deleted.
    let want = [
        ("", true),
        ("", false),
        ("S", false),
        ("DFRT", true),
        ("FS", true),
        // Lower case letters are not Dovecot's; the field name is any case;
        // a value may continue on the next line.
        ("T", true),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(l, r)| (l.to_string(), *r)).collect();
    assert_eq!(got, want);
}

#[test]
fn identical_messages_get_numbered_keys_and_keep_uids() {
    let f = Fixture::new();
    let one = format!("From a@b  {DATE}\nSubject: same\n\nbody\n\n");
    let other = format!("From a@b  {DATE}\nSubject: other\n\nbody\n\n");
    f.write(format!("{one}{other}{one}{one}").as_bytes());
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&s), vec![1, 2, 3, 4]);
    let k = &s.messages[0].base;
    assert_eq!(s.messages[2].base, format!("{k}#2"));
    assert_eq!(s.messages[3].base, format!("{k}#3"));
    assert_ne!(&s.messages[1].base, k);
    // Expunging the first twin: the later ones keep UIDs 3 and 4.
    f.mbox.expunge(&[&s.messages[0]]).unwrap();
    assert_eq!(f.bytes(), format!("{other}{one}{one}").as_bytes());
    let after = f.reopen().snapshot().unwrap();
    assert_eq!(uids(&after), vec![2, 3, 4]);
    assert_eq!(after.messages[1].base, *k);
    assert_eq!(after.messages[2].base, format!("{k}#2"));
    // A twin is read by its number.
    assert_eq!(
        f.mbox.read(&after.messages[2]).unwrap(),
        b"Subject: same\n\nbody\n"
    );
    f.mbox.expunge(&[&after.messages[2]]).unwrap();
    assert_eq!(f.bytes(), format!("{other}{one}").as_bytes());
    assert_eq!(uids(&f.mbox.snapshot().unwrap()), vec![2, 3]);
}

#[test]
fn dovecots_uids_are_taken_over() {
    let f = Fixture::new();
    f.write(
        b"From MAILER_DAEMON  Wed Oct 12 10:00:00 2022\n\
          Date: 12 Oct 2022 10:00:00 +0000\n\
          From: Mail System Internal Data <MAILER-DAEMON@mx.example>\n\
          Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n\
          Message-ID: <1665568800@mx.example>\n\
          X-IMAP: 1665568800 0000000020\n\
          Status: RO\n\
          \n\
          This text is part of the internal format of your mail folder, and is not\n\
          a real message.  It is created automatically by the mail system software.\n\
          If deleted, important folder data will be lost, and it will be re-created\n\
          with the data reset to initial values.\n\
          \n\
          From a@b.test  Wed Oct 12 10:00:01 2022\n\
          Subject: one\n\
          Status: RO\n\
          X-Keywords:                                                                    \n\
          X-UID: 7\n\
          Content-Length: 5\n\
          \n\
          body\n\
          \n\
          From a@b.test  Wed Oct 12 10:00:02 2022\n\
          Subject: no uid\n\
          \n\
          body\n\
          \n\
          From a@b.test  Wed Oct 12 10:00:03 2022\n\
          Subject: two\n\
          X-UID: 12\n\
          \n\
          body\n\
          \n\
          From a@b.test  Wed Oct 12 10:00:04 2022\n\
          Subject: going backwards\n\
          X-UID: 9\n\
          \n\
          body\n\
          \n",
    );
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(s.uidvalidity, 1665568800);
    // The pseudo message is hidden; X-UIDs in order are kept, the others
    // get UIDs from X-IMAP's next UID on, in file order.
    assert_eq!(uids(&s), vec![7, 12, 20, 21]);
    assert_eq!(s.uidnext, 22);
    let subjects: Vec<String> = contents(&f.mbox, &s)
        .iter()
        .map(|c| c.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(
        subjects,
        [
            "Subject: one",
            "Subject: two",
            "Subject: no uid",
            "Subject: going backwards"
        ]
    );
    // The same POP3 UIDLs as Dovecot's %08Xu%08Xv.
    assert_eq!(s.pop3_uidl(&s.messages[0]), "0000000763469020");
    assert_eq!(pop3_uidl(s.uidvalidity, 12), "0000000c63469020");
    // Ours from now on; the pseudo message survives an expunge.
    f.mbox.expunge(&[&s.messages[0]]).unwrap();
    let after = f.reopen().snapshot().unwrap();
    assert_eq!(uids(&after), vec![12, 20, 21]);
    assert!(
        String::from_utf8(f.bytes())
            .unwrap()
            .contains("FOLDER INTERNAL DATA")
    );

    // X-IMAPbase in a real first message.
    let g = Fixture::new();
    g.write(
        format!(
            "From a@b  {DATE}\nSubject: 1\nX-IMAPbase: 1700000000 0000000005 $Junk\nX-UID: 3\n\nb\n\n\
             From a@b  {DATE}\nSubject: 2\nX-UID: 4\n\nb\n\n"
        )
        .as_bytes(),
    );
    let s = g.mbox.snapshot().unwrap();
    assert_eq!(
        (s.uidvalidity, uids(&s), s.uidnext),
        (1700000000, vec![3, 4], 5)
    );
    // Without X-IMAPbase, X-UID alone is not trusted.
    let h = Fixture::new();
    h.write(format!("From a@b  {DATE}\nSubject: 1\nX-UID: 3\n\nb\n\n").as_bytes());
    let s = h.mbox.snapshot().unwrap();
    assert_eq!(uids(&s), vec![1]);
    assert_ne!(s.uidvalidity, 1700000000);
}

#[test]
fn read_after_another_process_expunged_is_not_found() {
    let f = Fixture::new();
    for i in 0..3 {
        f.deliver("a@b.test", &subject(i));
    }
    let s = f.mbox.snapshot().unwrap();
    f.reopen().expunge(&[&s.messages[1]]).unwrap();
    let err = f.mbox.read(&s.messages[1]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("UID 2"), "{err}");
    // The others are found where they went.
    assert_eq!(
        f.mbox.read(&s.messages[2]).unwrap(),
        b"From: a@b.test\nSubject: 2\n\nbody 2\n"
    );
    // A tool that rewrote the file by itself, the same.
    let text = String::from_utf8(f.bytes()).unwrap();
    let cut = text.find("\nFrom ").unwrap() + 1;
    f.write(&text.as_bytes()[cut..]);
    assert_eq!(
        f.mbox.read(&s.messages[0]).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    // And a mailbox removed altogether.
    fs::remove_file(f.path()).unwrap();
    assert_eq!(
        f.mbox.read(&s.messages[2]).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    f.mbox.expunge(&[&s.messages[2]]).unwrap();
    assert!(f.mbox.snapshot().unwrap().messages.is_empty());
}

#[test]
fn expunge_keeps_the_others_byte_for_byte_and_later_deliveries() {
    let f = Fixture::new();
    for i in 0..6 {
        f.deliver("a@b.test", &subject(i));
    }
    let whole = f.bytes();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            whole
                .windows(7)
                .enumerate()
                .filter(|(_, w)| w == b"\n\nFrom ")
                .map(|(i, _)| i + 2),
        )
        .chain(std::iter::once(whole.len()))
        .collect();
    let raw = |i: usize| &whole[starts[i]..starts[i + 1]];
    let s = f.mbox.snapshot().unwrap();
    let meta = fs::metadata(f.path()).unwrap();
    f.mbox
        .expunge(&[
            &s.messages[0],
            &s.messages[2],
            &s.messages[3],
            &s.messages[5],
        ])
        .unwrap();
    assert_eq!(f.bytes(), [raw(1), raw(4)].concat());
    let now = fs::metadata(f.path()).unwrap();
    assert_eq!(
        (now.ino(), now.mode(), now.uid(), now.gid()),
        (meta.ino(), meta.mode(), meta.uid(), meta.gid()),
        "rewritten in place"
    );
    // Expunging again what is gone already changes nothing.
    f.mbox.expunge(&[&s.messages[0]]).unwrap();
    assert_eq!(f.bytes(), [raw(1), raw(4)].concat());
    // Delivery right after appends to the same file.
    f.deliver("a@b.test", &subject(6));
    let after = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&after), vec![2, 5, 7]);
    assert_eq!(
        contents(&f.mbox, &after),
        vec![
            "From: a@b.test\nSubject: 1\n\nbody 1\n",
            "From: a@b.test\nSubject: 4\n\nbody 4\n",
            "From: a@b.test\nSubject: 6\n\nbody 6\n",
        ]
    );
    // Python's mailbox module reads the result as three messages.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import mailbox, sys; print(len(mailbox.mbox(sys.argv[1], create=False)))",
        ])
        .arg(f.path())
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    }
    // Everything.
    let all: Vec<&Message> = after.messages.iter().collect();
    f.mbox.expunge(&all).unwrap();
    assert_eq!(f.bytes(), b"");
    assert_eq!(f.mbox.snapshot().unwrap().uidnext, 8);
}

#[test]
fn expunge_while_delivering_loses_nothing() {
    let f = Fixture::new();
    let total = 40;
    let mut removed = HashSet::new();
    let mut rounds = 0;
    std::thread::scope(|scope| {
        let path = f.path();
        let delivering = scope.spawn(move || deliver_slowly(&path, total));
        // At least two rounds, even when a loaded machine let the
        // delivery run ahead.
        while !delivering.is_finished() || rounds < 2 {
            let s = f.mbox.snapshot().unwrap();
            // Every other message of what is there now.
            let doomed: Vec<&Message> = s.messages.iter().step_by(2).collect();
            for m in &doomed {
                let data = f.mbox.read(m).unwrap();
                removed.insert(String::from_utf8(data).unwrap());
            }
            f.mbox.expunge(&doomed).unwrap();
            rounds += 1;
            // Delivery retries its locks every 50 ms: let it in.
            std::thread::sleep(Duration::from_millis(5));
        }
        delivering.join().unwrap();
    });
    assert!(rounds > 1 && !removed.is_empty(), "{rounds} rounds");
    let s = f.reopen().snapshot().unwrap();
    let mut seen: HashSet<String> = contents(&f.mbox, &s).into_iter().collect();
    assert_eq!(seen.len(), s.messages.len());
    assert!(seen.is_disjoint(&removed));
    seen.extend(removed);
    let want: HashSet<String> = (0..total)
        .map(|i| format!("Subject: {i}\n\n{}\n>From x\n", format!("{i}").repeat(5000)))
        .collect();
    assert_eq!(seen, want);
    // UIDs only grew.
    assert!(s.messages.windows(2).all(|w| w[0].uid < w[1].uid));
}

#[test]
fn internal_dates_come_from_the_from_line_or_the_mtime() {
    let f = Fixture::new();
    let t = UNIX_EPOCH + Duration::from_secs(1_793_610_300);
    deliver(
        &f.path(),
        "a@b",
        t,
        b"S: 1\r\n\r\nx\r\n",
        &MboxOptions::default(),
    )
    .unwrap();
    let mut text = f.bytes();
    text.extend_from_slice(b"From a@b  no date here\nS: 2\n\nx\n\n");
    f.write(&text);
    let mtime = SystemTime::now() - Duration::from_secs(86400);
    File::options()
        .write(true)
        .open(f.path())
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let s = f.mbox.snapshot().unwrap();
    assert_eq!(s.messages[0].internal_date, t);
    assert_eq!(s.messages[1].internal_date, mtime);
}

#[test]
fn from_line_dates() {
    let at = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(secs));
    // 2026-11-02 09:05:00 UTC.
    let t = 1_793_610_300;
    for line in [
        "From a@b Mon Nov  2 09:05:00 2026 +0000",
        "From a@b  Mon Nov 2 10:05:00 +0100 2026",
        "From \"john Mon Nov\"@b Mon Nov  2 09:05:00 UTC 2026",
        "From a@b Mon Nov  2 04:05 2026 -0500",
        "From a@b Mon Nov  2 09:05:00 GMT 26",
    ] {
        assert_eq!(from_line_date(line.as_bytes()), at(t), "{line}");
    }
    let local = crate::mailbox::mbox::from_line("a@b", UNIX_EPOCH + Duration::from_secs(t));
    assert_eq!(
        from_line_date(local.trim_end().as_bytes()),
        at(t),
        "{local}"
    );
    for bad in [
        "From a@b",
        "From a@b Mon Nov 31 09:05:00 2026",
        "From a@b Mon Nov  2 9 2026",
        "From a@b Mon Nov  2 09:05:00",
        "From a@b Xyz Nov  2 09:05:00 2026",
        "Subject: Mon Nov  2 09:05:00 2026",
    ] {
        assert_eq!(from_line_date(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn locks_of_delivery_are_taken_and_waited_for() {
    let f = Fixture::new();
    f.deliver("a@b", &subject(0));
    // Someone else holds the dot lock (fresh: not stale).
    let dot = lock_path(&f.path());
    fs::write(&dot, "").unwrap();
    let quick = f.reopen().with_lock_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = quick.snapshot().unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert!(dot.exists(), "someone else's lock stays");
    // Released while we wait: the snapshot goes through.
    let releaser = {
        let dot = dot.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            fs::remove_file(dot).unwrap();
        })
    };
    let s = f
        .reopen()
        .with_lock_timeout(Duration::from_secs(10))
        .snapshot()
        .unwrap();
    releaser.join().unwrap();
    assert_eq!(uids(&s), vec![1]);
    // An fcntl lock held by another open file (a mail reader).
    let holder = File::options()
        .read(true)
        .write(true)
        .open(f.path())
        .unwrap();
    crate::mailbox::mbox::fcntl_lock(&holder, Instant::now() + Duration::from_secs(5)).unwrap();
    let err = quick.read(&s.messages[0]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert!(err.to_string().contains("lock"), "{err}");
    assert!(!dot.exists(), "our dot lock released on failure");
    drop(holder);
    assert_eq!(
        quick.read(&s.messages[0]).unwrap(),
        b"From: a@b.test\nSubject: 0\n\nbody 0\n"
    );
}

#[test]
fn a_corrupt_list_is_rebuilt_with_a_higher_uidvalidity() {
    let f = Fixture::new();
    f.deliver("a@b", &subject(0));
    let s = f.mbox.snapshot().unwrap();
    let far = s.uidvalidity + 1000;
    fs::write(
        f.dir.path().join("state").join(UIDLIST),
        format!("3 V{far} N9\nbad line\n"),
    )
    .unwrap();
    let again = f.mbox.snapshot().unwrap();
    assert_eq!(again.uidvalidity, far + 1);
    assert_eq!(uids(&again), vec![1]);
}

#[test]
fn symlinks_are_refused_unless_roots() {
    let f = Fixture::new();
    let target = f.dir.path().join("elsewhere");
    fs::write(&target, format!("From a@b  {DATE}\nS: 1\n\nx\n\n")).unwrap();
    std::os::unix::fs::symlink(&target, f.path()).unwrap();
    let root = nix::unistd::geteuid().is_root();
    if root {
        std::os::unix::fs::lchown(f.path(), Some(65534), Some(65534)).unwrap();
    }
    let err = f.mbox.snapshot().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    if root {
        std::os::unix::fs::lchown(f.path(), Some(0), Some(0)).unwrap();
        assert_eq!(f.mbox.snapshot().unwrap().messages.len(), 1);
    }
}

#[test]
fn bookkeeping_headers_are_hidden_so_flags_never_change_a_message() {
    let f = Fixture::new();
    f.deliver("a@b.test", &subject(0));
    let before = f.mbox.snapshot().unwrap();
    let served = contents(&f.mbox, &before);
    let text = String::from_utf8(f.bytes()).unwrap();
    let text = text.replacen(
        "Subject: 0\n",
        "Status: RO\nX-Status: AF\nX-Keywords: $Label1\n  Junk\nX-UID: 7\n\
         Content-Length: 7\nSubject: 0\nLines: 1\n",
        1,
    );
    f.write(text.as_bytes());
    let after = f.mbox.snapshot().unwrap();
    assert!(after.messages[0].flags.flagged);
    assert_eq!(
        contents(&f.mbox, &after),
        vec!["From: a@b.test\nSubject: 0\nLines: 1\n\nbody 0\n".to_string()]
    );
    assert_eq!(served, vec!["From: a@b.test\nSubject: 0\n\nbody 0\n"]);
    let m = &after.messages[0];
    let content = f.mbox.read(m).unwrap();
    assert_eq!(m.size, content.len() as u64);
    assert_eq!(m.wire_size, content.len() as u64 + 5);
}

fn header_flags(letters: &str, keywords: &[&str]) -> HeaderFlags {
    HeaderFlags {
        flags: Flags::parse(letters),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        old: true,
    }
}

fn change(m: &Message, expect: HeaderFlags, new: HeaderFlags) -> FlagsChange {
    FlagsChange {
        key: m.base.clone(),
        expect,
        new,
    }
}

#[test]
fn x_keywords_are_read_as_dovecot_writes_them() {
    let f = Fixture::new();
    let text = format!(
        "From a@b  {DATE}\nSubject: x\nX-Keywords: $Label1, Junk  junk bad(word \\Seen\n  NonJunk\nStatus: O\n\nbody\n\n\
         From a@b  {DATE}\nSubject: y\nX-Keywords:                 \n\nbody\n\n"
    );
    f.write(text.as_bytes());
    let (s, words) = f.mbox.snapshot_with_keywords().unwrap();
    assert_eq!(s.messages.len(), 2);
    assert_eq!(
        words.get(&s.messages[0].uid).cloned().unwrap_or_default(),
        ["$Label1", "Junk", "NonJunk"]
    );
    assert!(!words.contains_key(&s.messages[1].uid));
    // Hidden from clients as before.
    assert_eq!(
        f.mbox.read(&s.messages[0]).unwrap(),
        b"Subject: x\n\nbody\n"
    );
}

#[test]
fn flags_round_trip_through_the_file_in_dovecots_format() {
    let f = Fixture::new();
    for i in 0..3 {
        f.deliver("a@b.test", &subject(i));
    }
    // A mail reader's `Status:` in the middle of the header of the third.
    let text = String::from_utf8(f.bytes()).unwrap().replacen(
        "From: a@b.test\nSubject: 2\n",
        "From: a@b.test\nStatus: O\nSubject: 2\n",
        1,
    );
    f.write(text.as_bytes());
    let s = f.mbox.snapshot().unwrap();
    let before = contents(&f.mbox, &s);
    let none = HeaderFlags::default();
    let done = f
        .mbox
        .write_flags(&[
            change(
                &s.messages[1],
                none.clone(),
                header_flags("SF", &["$Label1", "Junk"]),
            ),
            change(
                &s.messages[2],
                HeaderFlags {
                    old: true,
                    ..HeaderFlags::default()
                },
                header_flags("RDT", &[]),
            ),
        ])
        .unwrap();
    assert_eq!(done, [true, true]);
    let text = String::from_utf8(f.bytes()).unwrap();
    // Added before the empty line that ends the header, in Dovecot's
    // order and letters; an existing field rewritten where it was.
    assert!(
        text.contains(
            "From: a@b.test\nSubject: 1\nStatus: RO\nX-Status: F\nX-Keywords: $Label1 Junk\n\nbody 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("From: a@b.test\nStatus: O\nSubject: 2\nX-Status: ATD\n\nbody 2\n"),
        "{text}"
    );
    assert!(text.starts_with("From a@b.test  "));
    assert!(
        text.contains("From: a@b.test\nSubject: 0\n\nbody 0\n\n"),
        "{text}"
    );

    // Another process (a restart) reads them back: same UIDs, flags,
    // keywords, contents and sizes.
    let (s2, words) = f.reopen().snapshot_with_keywords().unwrap();
    assert_eq!(uids(&s2), uids(&s));
    assert_eq!(contents(&f.mbox, &s2), before);
    let got: Vec<(String, bool)> = s2
        .messages
        .iter()
        .map(|m| (m.flags.to_string(), m.recent))
        .collect();
    assert_eq!(
        got,
        [
            ("".to_string(), true),
            ("FS".to_string(), false),
            ("DRT".to_string(), false)
        ]
    );
    assert_eq!(words[&s2.messages[1].uid], ["$Label1", "Junk"]);
    for (a, b) in s.messages.iter().zip(&s2.messages) {
        assert_eq!(
            (a.size, a.wire_size, &a.base),
            (b.size, b.wire_size, &b.base)
        );
    }

    // Cleared again: the fields stay, empty, as Dovecot leaves them.
    let done = f
        .mbox
        .write_flags(&[change(
            &s2.messages[1],
            header_flags("SF", &["junk", "$label1"]),
            header_flags("", &[]),
        )])
        .unwrap();
    assert_eq!(done, [true]);
    let text = String::from_utf8(f.bytes()).unwrap();
    assert!(
        text.contains("Subject: 1\nStatus: O\nX-Status: \nX-Keywords: \n\nbody 1\n"),
        "{text}"
    );
    let s3 = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&s3), uids(&s));
    assert_eq!(s3.messages[1].flags, Flags::default());
    assert!(!s3.messages[1].recent);
    assert_eq!(contents(&f.mbox, &s3), before);
}

#[test]
fn headers_changed_by_another_program_meanwhile_win() {
    let f = Fixture::new();
    f.deliver("a@b.test", &subject(0));
    let s = f.mbox.snapshot().unwrap();
    // Our change, made from what the first look saw (no flags).
    let write_draft = || {
        f.mbox
            .write_flags(&[change(
                &s.messages[0],
                HeaderFlags::default(),
                header_flags("T", &[]),
            )])
            .unwrap()
    };
    // mutt marks it read and flagged after our look.
    let text = String::from_utf8(f.bytes()).unwrap().replacen(
        "Subject: 0\n",
        "Subject: 0\nStatus: RO\nX-Status: F\n",
        1,
    );
    f.write(text.as_bytes());
    assert_eq!(write_draft(), [false]);
    assert_eq!(String::from_utf8(f.bytes()).unwrap(), text);
    // A message gone is skipped too.
    f.write(b"");
    assert_eq!(write_draft(), [false]);
}

#[test]
fn growing_and_shrinking_headers_in_a_big_mbox_keep_every_other_byte() {
    let f = Fixture::new();
    let total = 120;
    // About 4 MB: several times what a rewrite moves at a time.
    for i in 0..total {
        let body = format!("{i:04} ").repeat(7000);
        f.deliver("a@b.test", &format!("Subject: {i}\r\n\r\n{body}\r\n"));
    }
    let original = String::from_utf8(f.bytes()).unwrap();
    assert!(original.len() > 3 * COPY_CHUNK);
    let s = f.mbox.snapshot().unwrap();
    let before = contents(&f.mbox, &s);
    let add = |text: &str, i: usize, fields: &str| {
        let at = format!("Subject: {i}\n");
        text.replacen(&at, &format!("{at}{fields}"), 1)
    };
    // Two grow (one near the start, one in the middle), one at the end.
    let big = header_flags("SFRDT", &["$Label1", "$Label2", "Junk", "NonJunk"]);
    let done = f
        .mbox
        .write_flags(&[
            change(&s.messages[60], HeaderFlags::default(), big.clone()),
            change(
                &s.messages[3],
                HeaderFlags::default(),
                header_flags("S", &[]),
            ),
            change(&s.messages[total - 1], HeaderFlags::default(), big.clone()),
        ])
        .unwrap();
    assert_eq!(done, [true, true, true]);
    let fields = "Status: RO\nX-Status: AFTD\nX-Keywords: $Label1 $Label2 Junk NonJunk\n";
    let mut want = add(&original, 60, fields);
    want = add(&want, 3, "Status: RO\n");
    want = add(&want, total - 1, fields);
    assert!(
        f.bytes() == want.as_bytes(),
        "the file is not what it should be"
    );

    // One shrinks, one grows, in the same pass.
    let s2 = f.mbox.snapshot().unwrap();
    assert_eq!(uids(&s2), uids(&s));
    let done = f
        .mbox
        .write_flags(&[
            change(&s2.messages[60], big.clone(), header_flags("", &[])),
            change(&s2.messages[90], HeaderFlags::default(), big),
        ])
        .unwrap();
    assert_eq!(done, [true, true]);
    let mut want = add(&original, 60, "Status: O\nX-Status: \nX-Keywords: \n");
    want = add(&want, 3, "Status: RO\n");
    want = add(&want, 90, fields);
    want = add(&want, total - 1, fields);
    assert!(
        f.bytes() == want.as_bytes(),
        "the file is not what it should be"
    );
    let s3 = f.reopen().snapshot().unwrap();
    assert_eq!(uids(&s3), uids(&s));
    assert_eq!(contents(&f.mbox, &s3), before);
}

#[test]
fn writing_flags_while_delivering_loses_nothing() {
    let f = Fixture::new();
    let total = 40;
    let mut rounds = 0;
    std::thread::scope(|scope| {
        let path = f.path();
        let delivering = scope.spawn(move || deliver_slowly(&path, total));
        while !delivering.is_finished() || rounds < 2 {
            let (s, words) = f.mbox.snapshot_with_keywords().unwrap();
            // Every message's headers grow or shrink, by turns.
            let changes: Vec<FlagsChange> = s
                .messages
                .iter()
                .map(|m| {
                    let now = HeaderFlags {
                        flags: m.flags.clone(),
                        keywords: words.get(&m.uid).cloned().unwrap_or_default(),
                        old: !m.recent,
                    };
                    let new = if m.flags.flagged {
                        header_flags("S", &[])
                    } else {
                        header_flags("SFDT", &["$Label1", "Work"])
                    };
                    change(m, now, new)
                })
                .collect();
            let done = f.mbox.write_flags(&changes).unwrap();
            assert!(done.iter().all(|d| *d));
            rounds += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        delivering.join().unwrap();
    });
    assert!(rounds > 1, "{rounds} rounds");
    let s = f.reopen().snapshot().unwrap();
    let seen: HashSet<String> = contents(&f.mbox, &s).into_iter().collect();
    let want: HashSet<String> = (0..total)
        .map(|i| format!("Subject: {i}\n\n{}\n>From x\n", format!("{i}").repeat(5000)))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(s.messages.len(), total);
    assert_eq!(uids(&s), (1..=total as u32).collect::<Vec<_>>());
}

#[test]
fn append_writes_a_from_line_quoting_and_the_flags_and_gives_the_uid() {
    let f = Fixture::new();
    let t = UNIX_EPOCH + Duration::from_secs(1_793_610_300);
    // Into a missing file: created as delivery creates it.
    let flags = header_flags("S", &["$Label1"]);
    let added = f
        .mbox
        .append_all(&[(b"Subject: a\r\nStatus: U\r\n\r\nFrom me\r\n", &flags, t)])
        .unwrap();
    assert_eq!(added, [1]);
    f.deliver("x@y", &subject(1));
    // After a file without its final empty line.
    let mut text = f.bytes();
    text.pop();
    f.write(&text);
    let added = f
        .mbox
        .append_all(&[(b"Subject: b\r\n", &HeaderFlags::default(), t)])
        .unwrap();
    assert_eq!(added, [3]);
    let text = String::from_utf8(f.bytes()).unwrap();
    let from = super::delivery::from_line("", t);
    assert!(
        text.starts_with(&format!(
            "{from}Subject: a\nStatus: RO\nX-Keywords: $Label1\n\n>From me\n\nFrom x@y  "
        )),
        "{text}"
    );
    // Right after the last line, as delivery appends (the `From ` line
    // has a date).
    assert!(
        text.ends_with(&format!("body 1\n{from}Subject: b\n\n\n")),
        "{text}"
    );
    let (s, words) = f.reopen().snapshot_with_keywords().unwrap();
    assert_eq!(uids(&s), [1, 2, 3]);
    assert_eq!(s.messages[0].flags, Flags::parse("S"));
    assert!(!s.messages[0].recent);
    assert!(s.messages[2].recent);
    assert_eq!(words[&1], ["$Label1"]);
    assert_eq!(s.messages[0].internal_date, t);
    assert_eq!(contents(&f.mbox, &s)[0], "Subject: a\n\n>From me\n");
}

/// Delivers `total` messages of 5 KB ("Subject: i", a `From ` line in
/// the body) to the mbox at `path`, one every 2 ms, as local(8) would.
fn deliver_slowly(path: &Path, total: usize) {
    for i in 0..total {
        let body = format!("{i}").repeat(5000);
        let msg = format!("Subject: {i}\r\n\r\n{body}\r\nFrom x\r\n");
        deliver(
            path,
            "a@b",
            SystemTime::now(),
            msg.as_bytes(),
            &MboxOptions::default(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}
