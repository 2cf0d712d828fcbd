//! Pattern tables (cidr, regexp, pcre, texthash, inline) queried with our
//! postmap and with Postfix's, on the same files and keys: the answers must
//! be the same.

use crate::common::*;

/// Queries every key through `postmap -q -` and returns what was found.
fn answers(program: Command, table: &str, keys: &[&str]) -> String {
    let input = keys.join("\n") + "\n";
    program.args(["-q", "-", table]).stdin(input).run().stdout
}

fn compare(kind: &str, text: &str, keys: &[&str]) {
    let cd = ConfigDir::new("");
    cd.write("table", text);
    let table = format!("{kind}:{}", cd.file("table"));
    let ours = answers(compat("postmap"), &table, keys);
    let theirs = answers(Command::new(postfix_tool("postmap")), &table, keys);
    assert_eq!(ours, theirs, "{kind} table:\n{text}");
    assert!(
        !ours.is_empty(),
        "the keys should find something in:\n{text}"
    );
}

const CIDR: &str = "\
# comment
192.168.1.0/24 LAN
!10.0.0.0/8 NOT_TEN
10.1.0.0/16 TEN_ONE
[2001:db8::]/32 DOC6
2001:0db8:0000::1 EXACT6
if 172.16.0.0/12
172.16.5.0/24 INNER
if !172.16.5.128/25
172.16.5.0/24 LOWER_HALF
endif
endif
1.2.3.4/24 BADBITS
foo BADPAT
3.3.3.3
10.0.0.0/33 BADMASK
0.0.0.0/0 ANY4  with   spaces
::/0 ANY6
";

const CIDR_KEYS: &[&str] = &[
    "192.168.1.9",
    "192.168.1.255",
    "192.168.2.1",
    "10.2.3.4",
    "10.1.2.3",
    "8.8.8.8",
    "2001:db8::5",
    "2001:db8::1",
    "2001:db9::1",
    "172.16.5.5",
    "172.16.5.200",
    "172.16.6.6",
    "[192.168.1.9]",
    "192.168.1",
    "notanip",
    "1.2.3.4",
    "::ffff:192.168.1.9",
    "::1",
    "fe80::1",
    "0.0.0.0",
    "255.255.255.255",
    "010.1.1.1",
    "3.3.3.3",
    "10.0.0.1",
    "127.0.0.1",
    "172.31.255.255",
    "172.32.0.1",
    "2001:DB8::FFFF",
    "::",
    "1.1.1.1",
    "100.64.0.1",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "169.254.1.1",
    "fd00::2",
    "2002::1",
    "::ffff:10.1.1.1",
    "10.255.255.255",
    "11.0.0.0",
];

const REGEXP: &str = "\
/^(.*)-outgoing@(.*)$/  550 Use ${1}@${2} instead
/^postmaster@/  OK
!/@example\\.com$/  NOT_EXAMPLE $1
/^CaseTest@/I  CASE
/^casetest2@/i CASESENS
/^Mixed@/ MIXED
if /^user/
/^user1@/ INNER1
if !/\\.org$/
/^user2@/ INNER2_NOT_ORG
endif
endif
/[[:digit:]]{3}@/ THREEDIGITS
|^pipe\\|delim@| PIPEDELIM
#^hash#delim@# HASHDELIM
/a b@/ SPACE
/^multi@/ line
   continued
/(x)(y)/ $1$$2 $3
/bad[/ BAD
/noresult/
/^dollar@/ cost $$5
/^(a|b)(c)?@/ GROUPS [$1][$2]
/^ext\\+(.*)@(.*)$/ $(1) at ${2}
/./ CATCHALL
";

const REGEXP_KEYS: &[&str] = &[
    "list-outgoing@example.com",
    "postmaster@example.com",
    "foo@other.org",
    "CASETEST@example.com",
    "casetest2@example.com",
    "CASETEST2@example.com",
    "mixed@example.com",
    "MIXED@EXAMPLE.COM",
    "user1@example.com",
    "user2@example.com",
    "user2@example.org",
    "user3@example.com",
    "123@example.com",
    "12@example.com",
    "pipe|delim@example.com",
    "hash#delim@example.com",
    "a b@example.com",
    "multi@example.com",
    "xy@example.com",
    "dollar@example.com",
    "ac@example.com",
    "b@example.com",
    "ext+tag@example.com",
    "noresult",
    "bad[",
    "x",
    "",
    "@",
    "POSTMASTER@x",
    "a-outgoing@b-outgoing@c",
    "user1@example.org",
    "Z@example.com",
    "1234@example.com",
    "pipe@example.com",
    "multi@EXAMPLE.COM",
    "dollar@x",
    "acd@example.com",
    "bc@example.com",
    "ext+@example.com",
    "éé@example.com",
    "user1",
];

const PCRE: &str = "\
/^(?<name>\\w+)-outgoing@(.*)$/  550 Use ${1}@${2} instead
/^casetest@/ CASE
/^casetest2@/i CASESENS
/^a.b@/ DOTALL
/^c.d@/s NODOTALL
/^ x y @ /x EXTENDED
/^anch/A ANCHORED
/^lazy(.+?)@/ LAZY $1
/^ungreedy(.+)@/U UNG $1
/^(x)(y)@/ $1-$2
/foo/Z BADFLAG
/bad(/ BAD
if /^\\d+@/
/^1\\d*@/ STARTS_WITH_ONE
endif
/^\\s*spaced@/ SPACED
/\\bword\\b/ WORD
/^(?i:MiXeD)@/ INLINE_FLAG
!/@/ NO_AT
/^.{3}$/ THREE
";

const PCRE_KEYS: &[&str] = &[
    "list-outgoing@example.com",
    "CASETEST@e",
    "casetest2@e",
    "CASETEST2@e",
    "a\tb@e",
    "xy@e",
    "anchor",
    "anchorage",
    "lazyabc@e",
    "ungreedyabc@e",
    "xy@z",
    "foo",
    "123@e",
    "234@e",
    "1@e",
    "spaced@e",
    " spaced@e",
    "a word here@e",
    "awordb@e",
    "mixed@e",
    "MIXED@e",
    "noat",
    "abc",
    "ab",
    "abcd",
    "a@b",
    "x",
    "y@y",
    "lazy@e",
    "lazyx@y@e",
    "ungreedy@e",
    "ungreedyx@y@e",
    "bad(",
    "BAD",
    "foo@e",
    "10@e",
    "01@e",
    "word",
    "words@e",
    "casetest@E",
];

const TEXTHASH: &str = "\
# comment
Foo@Example.com   bar baz
foo@example.com dup
  continued
keyonly
\"quoted key\" v
alias: x
@example.com catch
192.168.1.1 OK
192.168.1 REJECT net
";

const TEXTHASH_KEYS: &[&str] = &[
    "foo@example.com",
    "FOO@EXAMPLE.COM",
    "@example.com",
    "alias:",
    "alias",
    "keyonly",
    "\"quoted",
    "192.168.1.1",
    "192.168.1",
    "192.168.1.2",
    "nothing",
    "",
];

#[test]
fn cidr_tables() {
    compare("cidr", CIDR, CIDR_KEYS);
}

#[test]
fn regexp_tables() {
    compare("regexp", REGEXP, REGEXP_KEYS);
}

#[test]
fn pcre_tables() {
    compare("pcre", PCRE, PCRE_KEYS);
}

#[test]
fn texthash_tables() {
    compare("texthash", TEXTHASH, TEXTHASH_KEYS);
}

#[test]
fn inline_tables() {
    let keys = ["a", "B", "c", "d", "e", "A"];
    let table = "inline:{ a=1, {b = 2} , { c = three  words }, d=x=y }";
    let ours = answers(compat("postmap"), table, &keys);
    let theirs = answers(Command::new(postfix_tool("postmap")), table, &keys);
    assert_eq!(ours, theirs);
}

#[test]
fn pattern_tables_in_braces() {
    for (table, keys) in [
        (
            "regexp:{ {/^a/ A}, {/^b/ B} }",
            &["apple", "banana", "cherry"][..],
        ),
        (
            "cidr:{ {10.0.0.0/8 TEN}, {0.0.0.0/0 ANY} }",
            &["10.1.1.1", "8.8.8.8", "::1"][..],
        ),
    ] {
        let ours = answers(compat("postmap"), table, keys);
        let theirs = answers(Command::new(postfix_tool("postmap")), table, keys);
        assert_eq!(ours, theirs, "{table}");
    }
}
