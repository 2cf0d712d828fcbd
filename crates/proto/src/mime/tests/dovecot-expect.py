#!/usr/bin/env python3
"""Record what Dovecot answers for each message of corpus/ (the expected
values of the mime tests): ENVELOPE, BODY, BODYSTRUCTURE, RFC822.SIZE and
BODY[section]<partial>, BINARY[section], BINARY.SIZE[section] for every part.

Runs a private Dovecot (Debian's dovecot-imapd) in a temporary directory
with an IMAP listener on 127.0.0.1 and a free port; each message is put
as it is (line ends untouched) into a Maildir folder of its own, so that
Dovecot reads the bytes the test reads. Writes corpus/NAME.dovecot:
entries `=== ITEM LENGTH` + LENGTH bytes (the value as Dovecot put it on
the wire, or `! ` and the tagged answer when there was none) + a newline.

Usage: python3 dovecot-expect.py [NAME ...]   (as root; needs dovecot-imapd)
"""
import os, re, shutil, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.environ.get("CORPUS") or os.path.join(HERE, "corpus")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(tmp, port):
    with open(os.path.join(tmp, "passwd"), "w") as f:
        f.write("u:{PLAIN}p\n")
    conf = os.path.join(tmp, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(f"""base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{tmp}/mail
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={tmp}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
    os.chmod(tmp, 0o755)
    subprocess.run(["dovecot", "-c", conf], check=True)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return conf
        except OSError:
            time.sleep(0.1)
    raise SystemExit("dovecot did not start")


class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.n = 0
        self.line()

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        l, self.buf = self.buf[:i], self.buf[i:]
        return l

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self):
        """One response with its literals, as bytes."""
        out = b""
        while True:
            l = self.line()
            out += l
            m = re.search(rb"~?\{(\d+)\}\r\n$", l)
            if not m:
                return out
            out += self.take(int(m.group(1)))

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r[len(tag) + 1:]
            untagged.append(r)


def value_end(data, i):
    """End of the IMAP value starting at data[i]."""
    c = data[i:i + 1]
    if c == b"(":
        depth = 0
        while True:
            c = data[i:i + 1]
            if c == b"(":
                depth += 1
                i += 1
            elif c == b")":
                depth -= 1
                i += 1
                if depth == 0:
                    return i
            elif c in (b'"', b"{", b"~"):
                i = value_end(data, i)
            else:
                i += 1
    if c == b'"':
        i += 1
        while data[i:i + 1] != b'"':
            i += 2 if data[i:i + 1] == b"\\" else 1
        return i + 1
    m = re.compile(rb"~?\{(\d+)\}\r\n").match(data, i)
    if m:
        return m.end() + int(m.group(1))
    while data[i:i + 1] not in (b" ", b")"):
        i += 1
    return i


def fetch(imap, item):
    untagged, tagged = imap.cmd("FETCH 1 (" + item + ")")
    for r in untagged:
        # a failed FETCH still sends `* 1 FETCH (UID 1)`: only our item counts
        if r.startswith(b"* 1 FETCH (" + item.split("[")[0].replace(".PEEK", "").encode()):
            d = r[len(b"* 1 FETCH ("):]
            # the echoed name: up to the space that follows it (brackets may hold spaces)
            i, depth = 0, 0
            while True:
                c = d[i:i + 1]
                if c == b"[":
                    depth += 1
                elif c == b"]":
                    depth -= 1
                elif c == b" " and depth == 0:
                    break
                i += 1
            j = value_end(d, i + 1)
            return d[i + 1:j]
    t = re.sub(rb" \(\d+\.\d+ \+ \d+\.\d+( \+ \d+\.\d+)? secs\)\.", b".", tagged.rstrip(b"\r\n"))
    return b"! " + t


def parse_list(data, i=0):
    """Parse an IMAP value into nested Python lists of bytes (None for NIL)."""
    items = []
    assert data[i:i + 1] == b"("
    i += 1
    while True:
        c = data[i:i + 1]
        if c == b")":
            return items, i + 1
        if c == b" ":
            i += 1
            continue
        if c == b"(":
            v, i = parse_list(data, i)
            items.append(v)
            continue
        j = value_end(data, i)
        tok = data[i:j]
        if tok.startswith(b'"'):
            items.append(re.sub(rb"\\(.)", rb"\1", tok[1:-1]))
        elif tok == b"NIL":
            items.append(None)
        elif tok.startswith((b"{", b"~{")):
            items.append(tok[tok.index(b"\n") + 1:])
        else:
            items.append(tok)
        i = j


def lower(v):
    return v.lower() if isinstance(v, bytes) else v


def parts(body, prefix, out):
    """(section, is_message) for every part below body (a parsed BODYSTRUCTURE)."""
    if isinstance(body[0], list):
        n = 0
        for child in body:
            if not isinstance(child, list):
                break
            n += 1
            sec = prefix + str(n)
            out.append((sec, False, not isinstance(child[0], list)))
            inner(child, sec, out)
        out.append((prefix + str(n + 1), False, False))
    return out


def inner(child, sec, out):
    if isinstance(child[0], list):
        parts(child, sec + ".", out)
    elif lower(child[0]) == b"message" and lower(child[1]) in (b"rfc822", b"global") and len(child) > 9 and isinstance(child[8], list):
        out[-1] = (sec, True, True)
        emb = child[8]
        if isinstance(emb[0], list):
            parts(emb, sec + ".", out)
        else:
            out.append((sec + ".1", False, True))
            inner(emb, sec + ".1", out)
    else:
        out.append((sec + ".1", False, False))


def items_for(bodystructure, is_probe=False):
    bs, _ = parse_list(bodystructure)
    items = ["RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE",
             "BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]",
             "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]", "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM)]",
             "BODY.PEEK[HEADER.FIELDS (CONTENT-TYPE X-NONE)]",
             "BODY.PEEK[]<0.10>", "BODY.PEEK[TEXT]<5.7>", "BODY.PEEK[]<100000.5>",
             "BINARY.PEEK[]", "BINARY.SIZE[]", "BINARY.PEEK[TEXT]"]
    if isinstance(bs[0], list):
        plist = parts(bs, "", [])
        is_probe = False
    else:
        plist = [("1", False, True)]
        inner(bs, "1", plist)
        plist.append(("2", False, False))
    if len(plist) > 40:
        # deep or wide messages: the first parts and the last ones only
        plist = plist[:4] + plist[-4:]
    for sec, is_msg, exists in plist:
        if is_probe and "." in sec:
            continue
        items += ["BODY.PEEK[%s]" % sec, "BODY.PEEK[%s.MIME]" % sec, "BINARY.PEEK[%s]" % sec,
                  "BINARY.SIZE[%s]" % sec, "BODY.PEEK[%s]<2.5>" % sec]
        if is_msg:
            items += ["BODY.PEEK[%s.HEADER]" % sec, "BODY.PEEK[%s.TEXT]" % sec,
                      "BODY.PEEK[%s.HEADER.FIELDS (SUBJECT)]" % sec]
    return items


def main():
    names = sys.argv[1:] or sorted(f[:-4] for f in os.listdir(CORPUS) if f.endswith(".eml"))
    tmp = tempfile.mkdtemp(prefix="ironpost-dovecot-")
    port = free_port()
    for d in ("mail", "run", "state", "home"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    for n in names:
        box = os.path.join(tmp, "mail", "." + n)
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(box, d))
        shutil.copyfile(os.path.join(CORPUS, n + ".eml"), os.path.join(box, "new", "1000000000.M1P1.corpus"))
    subprocess.run(["chown", "-R", "65534:65534", os.path.join(tmp, "mail"), os.path.join(tmp, "home")], check=True)
    conf = start(tmp, port)
    try:
        imap = Imap(port)
        imap.cmd("LOGIN u p")
        for n in names:
            _, ok = imap.cmd('SELECT "%s"' % n)
            assert ok.startswith(b"OK"), ok
            bs = fetch(imap, "BODYSTRUCTURE")
            out = b""
            items = items_for(bs, n.startswith("probe-"))
            if n.startswith("probe-deep"):
                items = items[:4]  # the structure is what these are for
            for item in items:
                v = fetch(imap, item)
                key = item.replace(".PEEK", "")
                out += b"=== %s %d\n" % (key.encode(), len(v)) + v + b"\n"
                if item == "BODYSTRUCTURE" and v != bs:
                    # Dovecot's first answer, before its cache flags a plain 7-bit text
                    out += b"=== BODYSTRUCTURE.FIRST %d\n" % len(bs) + bs + b"\n"
            with open(os.path.join(CORPUS, n + ".dovecot"), "wb") as f:
                f.write(out)
            print(n, len(out))
        imap.cmd("LOGOUT")
    finally:
        subprocess.run(["doveadm", "-c", conf, "stop"])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
