//! `postconf` and `ironpost check`, run as a user runs them, output checked
//! line by line.

use crate::common::*;

const ISSUE_MAIN_CF: &str = "\
myhostname = mail.xian.com
mydomain = xian.com
myorigin = $myhostname
mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain
inet_interfaces = all
mynetworks = 192.168.58.0/24, 127.0.0.0/8
";

fn postconf(cd: &ConfigDir) -> Command {
    compat("postconf").arg("-c").arg(cd.arg())
}

#[test]
fn tutorial_main_cf_shows_what_the_server_uses() {
    let cd = ConfigDir::new(ISSUE_MAIN_CF);
    let out = postconf(&cd).arg("-n").run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.lines(),
        vec![
            format!("config_directory = {}", cd.arg()).as_str(),
            "inet_interfaces = all",
            "mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain",
            "mydomain = xian.com",
            "myhostname = mail.xian.com",
            "mynetworks = 192.168.58.0/24, 127.0.0.0/8",
            "myorigin = $myhostname",
        ]
    );
    let out = postconf(&cd).arg("-nx").run();
    assert_eq!(
        out.lines()[2..],
        [
            "mydestination = mail.xian.com, localhost.xian.com, localhost, xian.com",
            "mydomain = xian.com",
            "myhostname = mail.xian.com",
            "mynetworks = 192.168.58.0/24, 127.0.0.0/8",
            "myorigin = mail.xian.com",
        ]
    );
    let out = postconf(&cd).args(["-x", "myorigin", "smtpd_banner"]).run();
    assert_eq!(
        out.lines(),
        vec![
            "myorigin = mail.xian.com",
            "smtpd_banner = mail.xian.com ESMTP ironpost"
        ]
    );
    let out = postconf(&cd).args(["-h", "mydestination"]).run();
    assert_eq!(
        out.stdout,
        "$myhostname, localhost.$mydomain, localhost, $mydomain\n"
    );
    let out = postconf(&cd).args(["-H", "mydomain", "myorigin"]).run();
    assert_eq!(out.stdout, "mydomain\nmyorigin\n");
}

#[test]
fn every_parameter_sorted_with_effective_values() {
    let cd = ConfigDir::new("message_size_limit = 20480000\n");
    let out = postconf(&cd).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let lines = out.lines();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" =").next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "postconf output is sorted by name");
    for p in ironpost_conf::PARAMS {
        assert!(names.contains(&p.name), "{} is listed", p.name);
    }
    for want in [
        "message_size_limit = 20480000",
        "mail_name = ironpost",
        "smtpd_banner = $myhostname ESMTP $mail_name",
        "home_mailbox =",
    ] {
        assert!(lines.contains(&want), "{want:?} in {lines:#?}");
    }
}

#[test]
fn defaults_follow_postfix() {
    let out = compat("postconf").arg("-d").run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let host = machine_hostname();
    let myhostname = if host.contains('.') {
        host.clone()
    } else {
        format!("{host}.localdomain")
    };
    let mydomain = myhostname.split_once('.').unwrap().1.to_string();
    let lines = out.lines();
    for want in [
        format!("myhostname = {myhostname}"),
        format!("mydomain = {mydomain}"),
        "myorigin = $myhostname".to_string(),
        "mydestination = $myhostname, localhost.$mydomain, localhost".to_string(),
        "inet_interfaces = localhost".to_string(),
        "inet_protocols = all".to_string(),
        "mynetworks_style = host".to_string(),
        "message_size_limit = 10240000".to_string(),
        "smtpd_banner = $myhostname ESMTP $mail_name".to_string(),
        "mail_name = ironpost".to_string(),
        "unknown_local_recipient_reject_code = 550".to_string(),
        "alias_maps = hash:/etc/ironpost/aliases".to_string(),
        "home_mailbox =".to_string(),
        "mail_spool_directory = /var/mail".to_string(),
        "config_directory = /etc/ironpost".to_string(),
    ] {
        assert!(lines.contains(&want.as_str()), "{want:?} in {lines:#?}");
    }
    // host style: this machine's own addresses only, loopback included.
    let mynetworks = lines
        .iter()
        .find_map(|l| l.strip_prefix("mynetworks = "))
        .unwrap();
    assert!(
        mynetworks.split(' ').any(|n| n == "127.0.0.1/32"),
        "{mynetworks}"
    );
    let out = compat("postconf").args(["-dx", "mydestination"]).run();
    assert_eq!(
        out.stdout,
        format!("mydestination = {myhostname}, localhost.{mydomain}, localhost\n")
    );
}

#[test]
fn warnings_for_unknown_and_unused_names() {
    let cd = ConfigDir::new(
        "myhostname = a.example\nfoo = bar\nmy_list = x\nmydestination = $my_list, $nothere\n",
    );
    let out = postconf(&cd).args(["myhostname", "nosuch"]).run();
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout, "myhostname = a.example\n");
    let main_cf = cd.file("main.cf");
    assert_eq!(
        out.stderr_lines(),
        vec![
            format!("postconf: warning: {main_cf}: unused parameter: foo=bar").as_str(),
            format!("postconf: warning: {main_cf}: undefined parameter: nothere").as_str(),
            "postconf: warning: nosuch: unknown parameter",
        ]
    );
    // A parameter of one's own that another value uses is listed.
    let out = postconf(&cd).arg("-n").run();
    assert!(out.lines().contains(&"my_list = x"), "{}", out.stdout);
    assert!(!out.stdout.contains("foo = bar"));
}

#[test]
fn edit_in_place_keeps_everything_else() {
    let original = "# top comment\nmyhostname = a\nmydestination = x,\n    y\n# mid\nmydomain = d\n\nrelayhost = r\n";
    let cd = ConfigDir::new(original);
    let out = postconf(&cd)
        .args([
            "-e",
            "mydestination = p, q",
            "newparam=1",
            "myorigin = $mydomain",
            "mydomain=e",
        ])
        .run();
    assert_eq!((out.status, out.stderr.as_str()), (0, ""));
    assert_eq!(
        cd.read("main.cf"),
        "# top comment\nmyhostname = a\nmydestination = p, q\n# mid\nmydomain = e\n\nrelayhost = r\nnewparam = 1\nmyorigin = $mydomain\n"
    );

    cd.write("main.cf", original);
    let out = postconf(&cd)
        .args(["-X", "mydestination", "relayhost", "nothere"])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        cd.read("main.cf"),
        "# top comment\nmyhostname = a\n# mid\nmydomain = d\n\n"
    );

    cd.write("main.cf", original);
    let out = postconf(&cd)
        .args(["-#", "mydestination", "mydomain"])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        cd.read("main.cf"),
        "# top comment\nmyhostname = a\n#mydestination = x,\n#    y\n# mid\n#mydomain = d\n\nrelayhost = r\n"
    );

    cd.write(
        "main.cf",
        "myhostname = a\nmydomain = d\nmyhostname = b\n    c\n",
    );
    let out = postconf(&cd).args(["-e", "myhostname=z"]).run();
    assert_eq!(
        out.stderr,
        format!(
            "postconf: warning: {}: multiple entries for \"myhostname\"\n",
            cd.file("main.cf")
        )
    );
    assert_eq!(
        cd.read("main.cf"),
        "myhostname = z\nmydomain = d\nmyhostname = z\n"
    );
    // The edited value is what postconf then reports.
    let out = postconf(&cd).args(["-h", "myhostname"]).run();
    assert_eq!(out.stdout, "z\n");
}

#[test]
fn edit_errors() {
    let cd = ConfigDir::new("myhostname = a\n");
    let out = postconf(&cd).args(["-e", "foo"]).run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "postconf: fatal: missing '=' after attribute name: \"foo\"\n"
    );
    let out = postconf(&cd).args(["-e", "=x"]).run();
    assert_eq!(
        out.stderr,
        "postconf: fatal: missing attribute name: \"=x\"\n"
    );
    let out = postconf(&cd).args(["-e", "-X", "a"]).run();
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("specify one of"), "{}", out.stderr);
    let out = postconf(&cd).args(["-X", "a=b"]).run();
    assert_eq!(out.status, 1);
    assert_eq!(cd.read("main.cf"), "myhostname = a\n", "nothing changed");
    let empty = tempfile::tempdir().unwrap();
    let out = compat("postconf")
        .args(["-c", empty.path().to_str().unwrap(), "-e", "a=b"])
        .run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        format!(
            "postconf: fatal: open {}/main.cf for reading: No such file or directory\n",
            empty.path().display()
        )
    );
}

#[test]
fn table_types() {
    let out = compat("postconf").arg("-m").run();
    assert_eq!(
        out.stdout,
        "cidr\ndirectory\nhash\ninline\nmysql\npcre\npgsql\nregexp\nsqlite\nstatic\ntexthash\nunix\n"
    );
}

#[test]
fn config_errors_name_file_and_line() {
    let cd = ConfigDir::new("myhostname = a\n# comment\nnoequal line here\n = novalue\n");
    let out = postconf(&cd).arg("-n").run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        format!(
            "postconf: fatal: {}, line 3: missing '=' after attribute name: \"noequal line here = novalue\"\n",
            cd.file("main.cf")
        )
    );

    let cd = ConfigDir::new("myhostname = $mydomain\nmydomain = $(myhostname).x\n");
    let out = postconf(&cd).args(["-x", "myhostname"]).run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        format!(
            "postconf: fatal: {}, line 1: parameter myhostname: recursive expansion: $myhostname -> $mydomain -> $myhostname\n",
            cd.file("main.cf")
        )
    );

    let missing = tempfile::tempdir().unwrap();
    let out = compat("postconf")
        .args(["-c", missing.path().to_str().unwrap(), "-n"])
        .run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        format!(
            "postconf: fatal: open {}/main.cf: No such file or directory\n",
            missing.path().display()
        )
    );
}

#[test]
fn check_reports_bad_values() {
    let cd = ConfigDir::new(
        "myhostname = mail.example.com\nmessage_size_limit = 10 megabytes\ndisable_vrfy_command = sure\n",
    );
    let out = ip("check").args(["-c", &cd.arg()]).run();
    assert_eq!(out.status, 1);
    let main_cf = cd.file("main.cf");
    assert_eq!(
        out.stderr,
        format!(
            "ironpost: error: {main_cf}, line 3: bad value for disable_vrfy_command: \"sure\": expected yes or no\n\
             ironpost: fatal: {main_cf}, line 2: bad value for message_size_limit: \"10 megabytes\": expected a size in bytes, like 10240000 or 10M\n"
        )
    );
    let good = ConfigDir::new(ISSUE_MAIN_CF);
    let out = ip("check").args(["-c", &good.arg()]).run();
    assert_eq!((out.status, out.stderr.as_str()), (0, ""));
}

#[test]
fn ways_to_name_the_config_directory() {
    let cd = ConfigDir::new("myhostname = env.example\n");
    for (var, how) in [
        ("IRONPOST_CONFIG_DIR", "ironpost"),
        ("MAIL_CONFIG", "postfix"),
    ] {
        let out = compat("postconf")
            .env(var, &cd.arg())
            .args(["-h", "myhostname"])
            .run();
        assert_eq!(out.stdout, "env.example\n", "{how}: {}", out.stderr);
    }
    let out = ip("postconf")
        .args(["-c", &cd.arg(), "-h", "myhostname"])
        .run();
    assert_eq!(out.stdout, "env.example\n");
    let out = ip("compat")
        .args(["postconf", "-c", &cd.arg(), "-h", "myhostname"])
        .run();
    assert_eq!(out.stdout, "env.example\n");
    let out = ip("compat").arg("nosuch").run();
    assert_eq!(out.status, 2);
}

#[test]
fn parameter_reference_is_current() {
    let out = ip("doc").arg("parameters").run();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/parameters.md"
    ))
    .expect("docs/parameters.md exists");
    assert!(
        out.stdout == committed,
        "docs/parameters.md is out of date: run `cargo run -p ironpost -- doc parameters > docs/parameters.md`"
    );
}
