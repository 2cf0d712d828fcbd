//! `postmap`, `postalias` and `newaliases` as an administrator runs them,
//! and hash tables compared with Postfix's own postmap.

use std::time::{Duration, SystemTime};

use crate::common::*;

const VIRTUAL: &str = "# c\nFoo@Example.com   bar baz  \nfoo@example.com dup\n  continued\nkeyonly\n\"quoted key\" v\nalias: x\n@example.com catch\n";

#[test]
fn build_query_list_delete() {
    let cd = ConfigDir::new("");
    cd.write("virtual", VIRTUAL);
    let table = format!("hash:{}", cd.file("virtual"));
    let out = compat("postmap").arg(&table).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let src = cd.file("virtual");
    assert_eq!(
        out.stderr_lines(),
        vec![
            format!("postmap: warning: {src}, line 3: duplicate entry: \"foo@example.com\"").as_str(),
            format!("postmap: warning: {src}, line 5: expected format: key whitespace value -- ignoring this line").as_str(),
            format!("postmap: warning: {src}, line 7: record is in \"key: value\" format; is this an alias file?").as_str(),
        ]
    );
    assert!(std::path::Path::new(&cd.file("virtual.db")).exists());

    let q = |key: &str| compat("postmap").args(["-q", key, &table]).run();
    let out = q("FOO@example.COM");
    assert_eq!((out.status, out.stdout.as_str()), (0, "bar baz\n"));
    let out = q("nope@example.com");
    assert_eq!((out.status, out.stdout.as_str()), (1, ""));
    assert_eq!(q("keyonly").status, 1);
    assert_eq!(q("\"quoted key\"").stdout, "v\n");

    let out = compat("postmap").args(["-s", &table]).run();
    assert_eq!(
        out.stdout,
        "foo@example.com\tbar baz\n\"quoted key\"\tv\nalias:\tx\n@example.com\tcatch\n"
    );

    let out = compat("postmap")
        .args(["-q", "-", &table])
        .stdin("a b\n@example.com\nalias:\n")
        .run();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "@example.com\tcatch\nalias:\tx\n")
    );

    let out = compat("postmap")
        .args(["-d", "Foo@example.com", &table])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(q("foo@example.com").status, 1);
    assert_eq!(
        compat("postmap")
            .args(["-d", "foo@example.com", &table])
            .run()
            .status,
        1
    );

    let out = compat("postmap")
        .args(["-i", &table])
        .stdin("New v\n")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(q("new").stdout, "v\n");
    assert_eq!(q("@example.com").stdout, "catch\n", "old entries kept");
}

#[test]
fn default_type_and_errors() {
    let cd = ConfigDir::new("");
    cd.write("access", "10.0.0.1 REJECT\n");
    // No type: default_database_type, which is hash.
    let out = compat("postmap")
        .args(["-c", &cd.arg(), &cd.file("access")])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = compat("postmap")
        .args(["-q", "10.0.0.1", &cd.file("access")])
        .run();
    assert_eq!(out.stdout, "REJECT\n");

    let out = compat("postmap").arg(cd.file("nosuch")).run();
    assert_eq!(
        (out.status, out.stderr.clone()),
        (
            1,
            format!(
                "postmap: fatal: open {}: No such file or directory\n",
                cd.file("nosuch")
            )
        )
    );
    cd.write("nodb", "a b\n");
    let out = compat("postmap")
        .args(["-q", "a", &format!("hash:{}", cd.file("nodb"))])
        .run();
    assert_eq!(
        (out.status, out.stderr.clone()),
        (
            1,
            format!(
                "postmap: fatal: open database {}.db: No such file or directory\n",
                cd.file("nodb")
            )
        )
    );
    let out = compat("postmap")
        .arg(format!("regexp:{}", cd.file("nodb")))
        .run();
    assert_eq!(
        out.stderr,
        "postmap: fatal: unsupported dictionary type: regexp does not support bulk-mode creation.\n"
    );
    let out = compat("postmap")
        .args(["-s", &format!("cidr:{}", cd.file("nodb"))])
        .run();
    assert_eq!(out.status, 1);
    let out = compat("postmap").run();
    assert!(
        out.stderr.starts_with("postmap: fatal: usage: postmap"),
        "{}",
        out.stderr
    );
    let out = compat("postmap")
        .args(["-q", "a", "-d", "b", "hash:x"])
        .run();
    assert_eq!(
        out.stderr,
        "postmap: fatal: specify only one of -s -q or -d\n"
    );
    let out = compat("postmap").args(["-q", "a", "btree:/x"]).run();
    assert_eq!(
        out.stderr,
        "postmap: fatal: unsupported dictionary type: btree:/x\n"
    );
}

#[test]
fn stale_index_warns_and_keeps_working() {
    let cd = ConfigDir::new("");
    cd.write("virtual", "a@example.com one\n");
    let table = format!("hash:{}", cd.file("virtual"));
    assert_eq!(compat("postmap").arg(&table).run().status, 0);
    // The source changed after the index was built, and long enough ago
    // that no postmap run can be under way.
    let now = SystemTime::now();
    let set = |name: &str, age: u64| {
        let f = std::fs::File::options()
            .write(true)
            .open(cd.file(name))
            .unwrap();
        f.set_modified(now - Duration::from_secs(age)).unwrap();
    };
    set("virtual.db", 600);
    set("virtual", 300);
    let out = compat("postmap")
        .args(["-q", "a@example.com", &table])
        .run();
    assert_eq!(out.stdout, "one\n");
    assert_eq!(
        out.stderr,
        format!(
            "postmap: warning: database {}.db is older than source file {}\n",
            cd.file("virtual"),
            cd.file("virtual")
        )
    );
    // A source changed moments ago (postmap may be running) is not reported.
    set("virtual", 10);
    let out = compat("postmap")
        .args(["-q", "a@example.com", &table])
        .run();
    assert_eq!(out.stderr, "");
}

#[test]
fn other_table_types_through_postmap() {
    let cd = ConfigDir::new("");
    cd.write("text", "Jerry jerry@example.com\n");
    let q = |key: &str, table: &str| {
        let out = compat("postmap").args(["-q", key, table]).run();
        (out.status, out.stdout)
    };
    let text = format!("texthash:{}", cd.file("text"));
    assert_eq!(q("JERRY", &text), (0, "jerry@example.com\n".into()));
    assert_eq!(q("tom", &text), (1, String::new()));
    assert_eq!(
        q("B", "inline:{ a=1, b=2, { c = three words } }"),
        (0, "2\n".into())
    );
    assert_eq!(
        q("anything", "static:{ smtp:[relay.example]:587 }"),
        (0, "smtp:[relay.example]:587\n".into())
    );
    let out = compat("postmap").args(["-s", &text]).run();
    assert_eq!(out.stdout, "jerry\tjerry@example.com\n");
    let out = compat("postmap")
        .args(["-q", "root", "unix:passwd.byname"])
        .run();
    assert_eq!(out.status, 0);
    assert!(out.stdout.starts_with("root:"), "{}", out.stdout);
}

#[test]
fn hash_tables_answer_like_postfix() {
    let cd = ConfigDir::new("");
    let mut source = String::from("# generated\n");
    for i in 0..300 {
        source.push_str(&format!("User{i}@Example.com\tvalue {i}, with  spaces\n"));
        if i % 7 == 0 {
            source.push_str(&format!("  continued {i}\n"));
        }
        if i % 11 == 0 {
            source.push_str(&format!("user{i}@example.com duplicate\n"));
        }
    }
    source.push_str("@example.com catchall\nkey: colon\n");
    cd.write("ours", &source);
    cd.write("theirs", &source);
    let ours = format!("hash:{}", cd.file("ours"));
    let theirs = format!("hash:{}", cd.file("theirs"));
    assert_eq!(compat("postmap").arg(&ours).run().status, 0);
    assert_eq!(
        Command::new(postfix_tool("postmap"))
            .arg(&theirs)
            .run()
            .status,
        0
    );
    let keys: Vec<String> = (0..320)
        .map(|i| format!("USER{i}@example.COM"))
        .chain(["@example.com", "key:", "key", "", "user1"].map(String::from))
        .collect();
    let input = keys.join("\n") + "\n";
    let a = compat("postmap")
        .args(["-q", "-", &ours])
        .stdin(input.clone())
        .run();
    let b = Command::new(postfix_tool("postmap"))
        .args(["-q", "-", &theirs])
        .stdin(input)
        .run();
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.status, b.status);
    let mut la: Vec<String> = compat("postmap")
        .args(["-s", &ours])
        .run()
        .stdout
        .lines()
        .map(String::from)
        .collect();
    let mut lb: Vec<String> = Command::new(postfix_tool("postmap"))
        .args(["-s", &theirs])
        .run()
        .stdout
        .lines()
        .map(String::from)
        .collect();
    la.sort();
    lb.sort();
    assert_eq!(la, lb);
}

const ALIASES: &str = "# aliases\npostmaster: root\nRoot: jerry\nstaff: jerry,\n   tom, \"|/usr/bin/procmail -a x\", /var/log/staff.mbox,\n   :include:/etc/ironpost/staff.list\n\"odd name\": jerry\nbad line\nb@c: d\nroot: duplicate\nlist: x  ,y,   z\nesc: x\\,y, \\root\n";

#[test]
fn postalias_and_newaliases() {
    let cd = ConfigDir::new("");
    cd.write("aliases", ALIASES);
    let out = compat("postalias").arg(cd.file("aliases")).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let src = cd.file("aliases");
    assert_eq!(
        out.stderr_lines(),
        vec![
            format!("postalias: warning: {src}, line 8: need name:value pair").as_str(),
            format!("postalias: warning: {src}, line 9: name must be local").as_str(),
            format!("postalias: warning: {src}, line 10: duplicate entry: \"root\"").as_str(),
        ]
    );
    let q = |key: &str| {
        let out = compat("postalias").args(["-q", key, &src]).run();
        (out.status, out.stdout)
    };
    assert_eq!(q("POSTMASTER"), (0, "root\n".into()));
    assert_eq!(q("root"), (0, "jerry\n".into()));
    assert_eq!(
        q("staff"),
        (0, "jerry, tom, \"|/usr/bin/procmail -a x\", /var/log/staff.mbox, :include:/etc/ironpost/staff.list\n".into())
    );
    assert_eq!(q("odd name"), (0, "jerry\n".into()));
    assert_eq!(q("nobody").0, 1);
    let out = compat("postalias").args(["-s", &src]).run();
    assert!(
        out.stdout.starts_with("postmaster:\troot\nroot:\tjerry\n"),
        "{}",
        out.stdout
    );

    // newaliases builds every table of alias_database, and `sendmail -bi`
    // style invocation through ironpost works the same way.
    let second = cd.file("more_aliases");
    cd.write("more_aliases", "abuse: root\n");
    cd.write(
        "main.cf",
        &format!("alias_database = hash:{src}, hash:{second}\nalias_maps = $alias_database\n"),
    );
    std::fs::remove_file(format!("{src}.db")).unwrap();
    let out = compat("newaliases").args(["-c", &cd.arg()]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(q("postmaster"), (0, "root\n".into()));
    let out = compat("postalias").args(["-q", "abuse", &second]).run();
    assert_eq!(out.stdout, "root\n");
    // A missing source is a fatal error naming it.
    cd.write(
        "main.cf",
        &format!("alias_database = hash:{}\n", cd.file("nosuch")),
    );
    let out = compat("newaliases").args(["-c", &cd.arg()]).run();
    assert_eq!(
        (out.status, out.stderr),
        (
            1,
            format!(
                "newaliases: fatal: open {}: No such file or directory\n",
                cd.file("nosuch")
            )
        )
    );
}

#[test]
fn aliases_stored_like_postfix() {
    let cd = ConfigDir::new("");
    let text = format!(
        "{ALIASES}a1: x  ,y,   z\nA2: \"|cmd  two spaces\" , /file/path\na3: :include:/etc/list, <user@dom>, User Name <u@d>\na4: x (comment) ,y\n\"q name\": x\na5:\na7: \"quoted local\"@dom\na8: x    y z\na9: x\\,y\na11: \n  cont\n\"a12 : odd\": v\nb2: a, ,b\nb5: <>\n"
    );
    cd.write("ours", &text);
    cd.write("theirs", &text);
    assert_eq!(compat("postalias").arg(cd.file("ours")).run().status, 0);
    assert_eq!(
        Command::new(postfix_tool("postalias"))
            .arg(cd.file("theirs"))
            .run()
            .status,
        0
    );
    let listing = |out: String| {
        let mut l: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with("@:") && !l.starts_with("YP_"))
            .map(String::from)
            .collect();
        l.sort();
        l
    };
    let ours = listing(
        compat("postalias")
            .args(["-s", &cd.file("ours")])
            .run()
            .stdout,
    );
    let theirs = listing(
        Command::new(postfix_tool("postalias"))
            .args(["-s", &cd.file("theirs")])
            .run()
            .stdout,
    );
    assert_eq!(ours, theirs);
}
